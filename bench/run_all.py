"""Run every benchmark under bench/ with its default settings and print the figures (`make bench`).

Each module is run as its own process (`python bench/<name>.py ...`) so one failing bench does
not hide the others; arguments after the script name are passed to every module, e.g.
`python bench/run_all.py -n 5000 -c 32`, or `make bench BENCH_ARGS="-n 5000"`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULTS: dict[str, list[str]] = {"intake": ["-n", "2000", "-c", "16"]}


def bench_modules() -> list[Path]:
    return sorted(p for p in BENCH_DIR.glob("*.py") if p.stem not in {"run_all", "__init__"} and not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    failed = []
    for module in bench_modules():
        args = DEFAULTS.get(module.stem, []) + extra
        print(f"==> bench/{module.name} {' '.join(args)}", flush=True)
        started = time.monotonic()
        status = subprocess.run([sys.executable, str(module), *args], cwd=BENCH_DIR.parent).returncode
        print(f"<== bench/{module.name}: {'ok' if status == 0 else f'exit {status}'} in {time.monotonic() - started:.1f}s\n",
              flush=True)
        if status != 0:
            failed.append(module.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
