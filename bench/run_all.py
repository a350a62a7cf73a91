"""Run every benchmark under bench/ with its default settings and print the figures (`make bench`).

Each module is run as its own process (`python bench/<name>.py ...`) so one failing bench does
not hide the others. Options after the script name go to every module whose `--help` lists them,
e.g. `python bench/run_all.py -n 5000 --leads 100000` gives `-n` to intake and `--leads` to the
scoring benches; `--only rescore,intake` runs a subset. From make:
`make bench BENCH_ARGS="--leads 100000"`.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULTS: dict[str, list[str]] = {
    "intake": ["-n", "2000", "-c", "16"],
    # Issue 3's figures: 1,000,000 leads x 5 signals (several minutes; scale down with `--leads`).
    "rescore": ["--leads", "1000000"],
    "signal_latency": ["--rate", "20", "--seconds", "30"],
    # Issue 4's figures: 100,000 leads through a 50-rule set, plus the round-robin fairness runs.
    "routing": ["--leads", "100000"],
    # Issue 4's end-to-end figure: intake post -> owner set, with web, worker and beat running.
    # Issue 14's figures: 100 leads/s for 60 s, then 5 batch requests of 1,000 leads at once.
    "capture_to_owner": ["--rate", "100", "--seconds", "60", "--batches", "5"],
    # Issue 6's figures: 100,000 due nurture steps sent over SMTP by the Nurture Agent.
    "nurture": ["--enrollments", "100000"],
    # Issue 15's figure: 10,000 then 100,000 leads exported over HTTP, peak RSS of the serving worker.
    "export": ["--first", "10000", "--leads", "100000"],
    # Issue 14's reconciliation: 30 leads/s for 60 s through a worker kill -9 and a Redis restart.
    "chaos": ["--rate", "30", "--seconds", "60"],
    # Issue 15's figures: a 100,000-row CSV (10 % duplicates, 2 % bad rows) against COPY of the same file.
    "import": ["--rows", "100000"],
    # Issue 16's figures: the learned model trained on 100,000 closed leads, re-scoring with it, and the AUC of the
    # seed, learned and suggested models on a synthetic funnel with a known propensity.
    "learning": ["--closed", "100000"],
}


def bench_modules() -> list[Path]:
    return sorted(p for p in BENCH_DIR.glob("*.py") if p.stem not in {"run_all", "__init__"} and not p.stem.startswith("_"))


def option_groups(argv: list[str]) -> list[list[str]]:
    """[["-n", "5000"], ["--json"], ["--leads=10"]]: each option with the values that follow it."""
    groups: list[list[str]] = []
    for token in argv:
        if token.startswith("-") and not re.fullmatch(r"-\d[\d.]*", token) or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return groups


def module_options(module: Path) -> set[str]:
    """The option names a bench accepts, read from its --help."""
    result = subprocess.run([sys.executable, str(module), "--help"], cwd=BENCH_DIR.parent, capture_output=True,
                            text=True)
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", result.stdout))


def module_args(module: Path, groups: list[list[str]]) -> list[str]:
    known = module_options(module)
    picked = [token for group in groups if group[0].split("=", 1)[0] in known for token in group]
    return DEFAULTS.get(module.stem, []) + picked


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    only: set[str] | None = None
    if "--only" in extra:
        at = extra.index("--only")
        only = set(extra[at + 1].split(",")) if at + 1 < len(extra) else set()
        del extra[at:at + 2]
    groups = option_groups(extra)
    failed = []
    for module in bench_modules():
        if only is not None and module.stem not in only:
            continue
        args = module_args(module, groups)
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
