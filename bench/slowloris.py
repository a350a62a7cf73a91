"""Slowloris benchmark: /healthz latency and success rate while slow sockets attack gunicorn directly and through nginx.

Starts gunicorn as `make run` does (bench/intake.py's Server: --workers x --threads, gthread) and, when
an nginx binary is installed, nginx as a non-daemon child with deploy/nginx.conf (the same timeouts,
buffering and headers; only its listen address, upstream, pid file, logs and temp paths are the
bench's own). Then, for each path in turn: /healthz probed without an attack (the baseline), and again
while --sockets sockets each send a partial request head and one more byte every --drip seconds (a
socket the server closes is opened again, as an attacker would). Each of gunicorn's threads is held
by the slow socket it reads from, so the direct path is expected to stop answering once the sockets
outnumber the threads (the contrast); through nginx every probe must still answer. Exit status 1
when the nginx path fails (or nginx does not start); without nginx its half is skipped with a message.

    python -m leadmgmt.embedded exec -- python bench/slowloris.py --sockets 64 --seconds 15
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import BASE_DIR, percentile, require_services, say

NGINX_CONF = BASE_DIR / "deploy" / "nginx.conf"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
# The partial request head each slow socket sends first; a byte of the header value follows every --drip s.
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris-bench\r\nX-Slow: "


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=64, help="slow sockets per attack (default 64)")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="seconds of probing under attack, per path (default 15: past nginx's 10 s header timeout)")
    parser.add_argument("--baseline-seconds", type=float, default=3.0,
                        help="seconds of probing without an attack, per path (default 3)")
    parser.add_argument("--drip", type=float, default=3.0, help="seconds between two bytes of a slow socket (default 3)")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between two /healthz probes (default 0.25)")
    parser.add_argument("--probe-timeout", type=float, default=5.0,
                        help="a probe without an answer within this many seconds failed (default 5)")
    parser.add_argument("--min-success", type=float, default=0.95,
                        help="share of probes through nginx under attack that must answer 200 (default 0.95)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2, as make run)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4, as make run)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.sockets < 1 or args.seconds <= 0 or args.drip <= 0 or args.interval <= 0 or args.probe_timeout <= 0:
        parser.error("--sockets, --seconds, --drip, --interval and --probe-timeout must be positive")
    return args


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((path for path in NGINX_CANDIDATES if os.access(path, os.X_OK)), None)


def nginx_config(*, listen_port: int, upstream: str, prefix: Path) -> str:
    """deploy/nginx.conf with the bench's listen address, upstream server, pid file, access log and temp
    paths; every other directive (timeouts, buffering, body size, headers) exactly as deployed."""
    temp_paths = "".join(f"    {name}_temp_path {prefix / name};\n"
                         for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    edits = [
        (r"^(\s*)listen 8080;", lambda m: f"{m.group(1)}listen 127.0.0.1:{listen_port};"),
        (r"^(\s*)server web:8000 resolve;", lambda m: f"{m.group(1)}server {upstream};"),
        (r"^pid \S+;", lambda m: f"pid {prefix / 'nginx.pid'};"),
        (r"^(\s*)access_log /dev/stdout;", lambda m: f"{m.group(1)}access_log {prefix / 'access.log'};"),
        (r"^http \{\n", lambda m: f"http {{\n{temp_paths}"),
    ]
    text = NGINX_CONF.read_text()
    for pattern, replacement in edits:
        text, found = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        if found != 1:
            raise RuntimeError(f"deploy/nginx.conf has no line matching {pattern!r}: update bench/slowloris.py")
    return text


class Nginx:
    """nginx in the foreground (`daemon off`), in its own process group, under a temp prefix."""

    def __init__(self, binary: str, *, upstream_port: int):
        from leadmgmt.embedded import _free_port

        self.port = _free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        # Its worker processes run as an unprivileged user when nginx is started as root: they must reach
        # the temp paths under the prefix.
        self.prefix.chmod(0o755)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(nginx_config(listen_port=self.port, upstream=f"127.0.0.1:{upstream_port}",
                                          prefix=self.prefix))
        self.log = self.prefix / "error.log"
        argv = [binary, "-p", str(self.prefix), "-c", str(self.conf), "-e", "stderr"]
        checked = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True)
        if checked.returncode != 0:
            self.proc = None
            raise RuntimeError(f"nginx refused the configuration generated from deploy/nginx.conf:\n{checked.stderr}")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*argv, "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if probe_once(self.port, timeout=2)[0]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer /healthz; its log:\n{self.log.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                if self.proc.poll() is not None:
                    break
                try:
                    os.killpg(self.proc.pid, signum)
                    self.proc.wait(wait)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        shutil.rmtree(self.prefix, ignore_errors=True)


class Slowloris:
    """`sockets` connections that each send a partial request head, then one byte every `drip` seconds.

    A socket the server closes (or answers, e.g. nginx's 408 after client_header_timeout) is counted
    and opened again, so the attack keeps its size for as long as it runs."""

    def __init__(self, port: int, *, sockets: int, drip: float):
        self.port, self.drip = port, drip
        self.stopping = threading.Event()
        self.cut_off = 0  # sockets the server closed or answered
        self.socks = [self._open() for _ in range(sockets)]
        self.thread = threading.Thread(target=self._run, daemon=True, name="slowloris")
        self.thread.start()

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(SLOW_HEAD)
        sock.setblocking(False)
        return sock

    @staticmethod
    def _cut_off(sock: socket.socket) -> bool:
        """Whether the server closed this socket or answered it (b"" or an error page: either way, done)."""
        try:
            sock.recv(4096)
        except BlockingIOError:
            return False  # nothing to read: the server still waits for the rest of our head
        except OSError:
            pass
        return True

    def _run(self) -> None:
        while not self.stopping.wait(self.drip):
            for i, sock in enumerate(self.socks):
                if self.stopping.is_set():
                    return
                try:
                    sock.send(b"a")
                    cut = self._cut_off(sock)
                except BlockingIOError:
                    cut = False
                except OSError:
                    cut = True
                if cut:
                    self.cut_off += 1
                    sock.close()
                    try:
                        self.socks[i] = self._open()
                    except OSError:
                        pass  # the next round tries again (this one's send fails on the closed socket)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.drip + 5)
        for sock in self.socks:
            sock.close()


def probe_once(port: int, *, timeout: float) -> tuple[bool, float]:
    """GET /healthz on a fresh connection: (answered 200, milliseconds)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    return ok, (time.perf_counter() - started) * 1000


def probe(port: int, *, seconds: float, interval: float, timeout: float) -> dict:
    """Probe /healthz one request at a time, one every `interval` seconds, for `seconds`."""
    results = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        due = started + len(results) * interval
        if (pause := due - time.monotonic()) > 0:
            time.sleep(pause)
        results.append(probe_once(port, timeout=timeout))
    answered = sorted(ms for ok, ms in results if ok)
    every = sorted(ms for _ok, ms in results)
    return {"probes": len(results), "ok": len(answered), "success": len(answered) / len(results) if results else 0.0,
            "p50": percentile(every, 50), "p95": percentile(every, 95), "max": max(every, default=float("nan"))}


def under_attack(port: int, args: argparse.Namespace) -> dict:
    """Probe while --sockets slow sockets hold the server; the sockets are closed afterwards."""
    attack = Slowloris(port, sockets=args.sockets, drip=args.drip)
    try:
        time.sleep(min(1.0, args.drip))  # the server takes up the sockets (gunicorn: a thread each)
        figures = probe(port, seconds=args.seconds, interval=args.interval, timeout=args.probe_timeout)
    finally:
        attack.stop()
    return figures | {"cut_off": attack.cut_off}


def recovered(port: int, timeout: float = 30) -> float | None:
    """Seconds until the server answers again once the slow sockets are gone (None: it did not)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if probe_once(port, timeout=2)[0]:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def run(args: argparse.Namespace) -> dict:
    from intake import Server

    binary = find_nginx()
    out: dict = {"sockets": args.sockets, "threads": args.web_workers * args.threads, "nginx": binary,
                 "nginx_version": None, "direct": {}, "proxied": {}}
    server = Server(workers=args.web_workers, threads=args.threads)
    nginx = None
    try:
        server.wait_ready()
        if binary:
            version = subprocess.run([binary, "-v"], capture_output=True, text=True)
            out["nginx_version"] = (version.stderr or version.stdout).strip().split("/")[-1]
            nginx = Nginx(binary, upstream_port=server.port)
            nginx.wait_ready()
        probing = {"interval": args.interval, "timeout": args.probe_timeout}
        say(f"baseline: probing /healthz for {args.baseline_seconds:g}s per path without an attack …")
        out["direct"]["baseline"] = probe(server.port, seconds=args.baseline_seconds, **probing)
        if nginx:
            out["proxied"]["baseline"] = probe(nginx.port, seconds=args.baseline_seconds, **probing)
        say(f"attacking gunicorn directly with {args.sockets} slow sockets for {args.seconds:g}s …")
        out["direct"]["attack"] = under_attack(server.port, args)
        out["direct"]["recovered_s"] = recovered(server.port)
        if nginx:
            say(f"attacking nginx with {args.sockets} slow sockets for {args.seconds:g}s …")
            out["proxied"]["attack"] = under_attack(nginx.port, args)
            if nginx.proc.poll() is not None:
                raise RuntimeError(f"nginx exited during the attack:\n{nginx.log.read_text(errors='replace')[-4000:]}")
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()
    return out


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def proxied_ok(out: dict, min_success: float) -> bool:
    proxied = out["proxied"]
    return (proxied["baseline"]["success"] == 1.0 and proxied["attack"]["probes"] > 0
            and proxied["attack"]["success"] >= min_success)


def report(out: dict, args: argparse.Namespace) -> str:
    rows = [f"{'/healthz, one probe every ' + format(args.interval, 'g') + ' s':<44}{'probes':>7}{'ok':>6}{'ok %':>7}"
            f"{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'cut off':>9}"]
    paths = [("direct to gunicorn", out["direct"])] + ([("through nginx", out["proxied"])] if out["proxied"] else [])
    for label, figures in paths:
        for phase, title in (("baseline", "no attack"), ("attack", f"{out['sockets']} slow sockets")):
            f = figures[phase]
            cut = f"{f['cut_off']:>9}" if "cut_off" in f else f"{'':>9}"
            rows.append(f"{label + ', ' + title:<44}{f['probes']:>7}{f['ok']:>6}{100 * f['success']:>6.0f}%"
                        f"{f['p50']:>9.1f}{f['p95']:>9.1f}{f['max']:>9.1f}{cut}")
    direct = out["direct"]
    threads = out["threads"]
    rows.append(f"gunicorn: {args.web_workers} workers x {args.threads} threads = {threads} threads for "
                f"{out['sockets']} slow sockets; direct p50 under attack / baseline = "
                f"{ratio(direct['attack']['p50'], direct['baseline']['p50']):.1f}x; answered "
                f"{100 * direct['attack']['success']:.0f}% under attack"
                + (" (expected: each slow socket holds a thread)" if out["sockets"] >= threads
                   else " (fewer sockets than threads: the attack cannot hold them all)"))
    recovered_s = direct["recovered_s"]
    rows.append("gunicorn answered again " + (f"{recovered_s:.1f}s after the slow sockets closed" if recovered_s is not None
                                              else "NOT within 30s after the slow sockets closed"))
    if not out["proxied"]:
        rows.append("nginx is not installed: skipped the proxied half (install it, e.g. `apt-get install -y nginx`, "
                    "and run again)")
        return "\n".join(rows)
    proxied = out["proxied"]
    rows.append(f"nginx {out['nginx_version']} ({out['nginx']}): p50 under attack / baseline = "
                f"{ratio(proxied['attack']['p50'], proxied['baseline']['p50']):.1f}x; success under attack "
                f"{100 * proxied['attack']['success']:.0f}% through nginx vs {100 * direct['attack']['success']:.0f}% direct; "
                f"nginx cut off {proxied['attack']['cut_off']} slow sockets (client_header_timeout), which reconnected")
    verdict = "met" if proxied_ok(out, args.min_success) else "FAILED"
    rows.append(f"through nginx under attack: {100 * proxied['attack']['success']:.0f}% answered "
                f"(target >= {100 * args.min_success:.0f}% within {args.probe_timeout:g}s) {verdict}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_services("slowloris.py")
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadmgmt.settings")

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every `finally`: gunicorn, nginx

    signal.signal(signal.SIGTERM, terminate)
    try:
        out = run(args)
    except RuntimeError as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        say("interrupted: gunicorn and nginx stopped")
        return 130
    if args.json:
        print(json.dumps(out | {"target_met": proxied_ok(out, args.min_success) if out["proxied"] else None},
                         default=str))
    else:
        say(report(out, args))
    return 0 if not out["proxied"] or proxied_ok(out, args.min_success) else 1


if __name__ == "__main__":
    sys.exit(main())
