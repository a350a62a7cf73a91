"""Slow clients cannot take the site down behind nginx (deploy/nginx.conf), while they do take gunicorn alone.

bench/slowloris.py at a small size: one gunicorn worker with two threads, eight sockets sending a
partial request head a byte at a time. Straight to gunicorn no /healthz probe answers (each slow
socket holds a thread); through nginx, configured as deployed, every probe does.
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


@pytest.fixture
def slowloris(monkeypatch):
    """The bench module (bench/ on sys.path for this test only, as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("slowloris")


def directive(name: str) -> str:
    """The value of a directive in deploy/nginx.conf (the one line that sets it)."""
    values = re.findall(rf"^\s*{re.escape(name)}\s+([^;]+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert len(values) == 1, (name, values)
    return values[0]


def test_the_proxy_reads_requests_whole_and_cuts_slow_clients_off_within_seconds():
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        assert int(directive(timeout).removesuffix("s")) <= 10, timeout
    assert directive("proxy_request_buffering") == directive("proxy_buffering") == "on"
    # Large enough for the largest body an endpoint takes; the app refuses each endpoint's excess itself.
    limit = int(directive("client_max_body_size").removesuffix("m")) * 1024 * 1024
    assert limit >= max(settings.INTAKE_MAX_BODY_BYTES, settings.SIGNALS_MAX_BODY_BYTES,
                        getattr(settings, "INTAKE_BATCH_MAX_BODY_BYTES", 0), settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    headers = re.findall(r"^\s*proxy_set_header\s+(\S+)\s+(\S+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert dict(headers) == {"Host": "$http_host", "X-Forwarded-For": "$remote_addr", "X-Forwarded-Proto": "$scheme"}


def test_the_bench_runs_nginx_with_the_deployed_directives(slowloris, tmp_path):
    conf = slowloris.nginx_config(listen_port=18080, upstream="127.0.0.1:18000", prefix=tmp_path)

    assert "listen 127.0.0.1:18080;" in conf and "server 127.0.0.1:18000;" in conf
    assert "web:8000" not in conf and "/var/run/nginx.pid" not in conf
    kept = [line for line in NGINX_CONF.read_text().splitlines()
            if re.match(r"\s*(client_|send_|keepalive_|proxy_|reset_)", line)]
    assert len(kept) > 10 and all(line in conf.splitlines() for line in kept)


def test_without_nginx_the_bench_skips_the_proxied_half_with_a_message_and_passes(slowloris, monkeypatch):
    monkeypatch.setattr(slowloris.shutil, "which", lambda name: None)
    monkeypatch.setattr(slowloris, "NGINX_CANDIDATES", ())
    assert slowloris.find_nginx() is None
    figures = {"probes": 4, "ok": 0, "success": 0.0, "p50": 1500.0, "p95": 1500.0, "max": 1500.0}
    out = {"sockets": 8, "threads": 2, "nginx": None, "nginx_version": None, "proxied": {},
           "direct": {"baseline": figures | {"ok": 4, "success": 1.0, "p50": 2.0}, "attack": figures | {"cut_off": 0},
                      "recovered_s": 0.1}}

    text = slowloris.report(out, slowloris.parse_args(["--web-workers", "1", "--threads", "2"]))

    assert "nginx is not installed: skipped the proxied half" in text
    assert "direct to gunicorn, 8 slow sockets" in text and "750.0x" in text


@pytest.mark.slow
def test_slow_sockets_stop_gunicorn_alone_but_not_gunicorn_behind_nginx(slowloris):
    if slowloris.find_nginx() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing in CI; .ci/run installs Debian's nginx package")
        pytest.skip("the slow-client test needs nginx: run `apt-get install -y nginx` to enable it")
    result = subprocess.run(
        [sys.executable, "bench/slowloris.py", "--sockets", "8", "--web-workers", "1", "--threads", "2",
         "--seconds", "4", "--baseline-seconds", "1", "--drip", "1", "--probe-timeout", "1.5"],
        cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"}, capture_output=True, text=True, timeout=180,
    )
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out}\n{result.stderr[-4000:]}"

    def row(label: str) -> tuple[int, int]:
        found = re.search(rf"^{re.escape(label)}\s+(\d+)\s+(\d+)\s+\d+%", out, re.MULTILINE)
        assert found, (label, out)
        return int(found.group(1)), int(found.group(2))

    for label in ("direct to gunicorn, no attack", "through nginx, no attack", "through nginx, 8 slow sockets"):
        probes, ok = row(label)
        assert probes > 0 and ok == probes, (label, out)
    probes, ok = row("direct to gunicorn, 8 slow sockets")
    assert probes > 0 and ok == 0, out  # the contrast: both threads held, nothing answered
    assert re.search(r"through nginx under attack: 100% answered \(target >= 95% within 1\.5s\) met", out), out
    assert re.search(r"gunicorn answered again [\d.]+s after the slow sockets closed", out), out
