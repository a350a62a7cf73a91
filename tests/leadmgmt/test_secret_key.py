"""The secret key: required in production, random per install (under the data dir) elsewhere, never the repo's."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from leadmgmt.secret_key import local_secret_key

BASE_DIR = Path(__file__).resolve().parents[2]
PRINT_KEY = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def run_settings(**overrides: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "leadmgmt.settings"}
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-c", PRINT_KEY], env=env, cwd=BASE_DIR, capture_output=True,
                          text=True, timeout=60)


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    result = run_settings(DJANGO_SECRET_KEY=None, LEADMGMT_PRODUCTION="1", DJANGO_DEBUG="1",
                          LEADMGMT_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_production_uses_the_configured_secret_key(tmp_path):
    result = run_settings(DJANGO_SECRET_KEY="configured-" + "x" * 40, LEADMGMT_PRODUCTION="1",
                          LEADMGMT_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "configured-" + "x" * 40


def test_local_runs_generate_a_private_key_once_and_reuse_it(tmp_path):
    first = run_settings(DJANGO_SECRET_KEY=None, LEADMGMT_PRODUCTION=None, LEADMGMT_DATA_DIR=str(tmp_path))
    second = run_settings(DJANGO_SECRET_KEY=None, LEADMGMT_PRODUCTION=None, LEADMGMT_DATA_DIR=str(tmp_path))

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    key = first.stdout.strip()
    assert key == second.stdout.strip() and len(key) >= 50
    path = tmp_path / "secret_key"
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_each_install_gets_its_own_key_and_none_is_in_the_repository(tmp_path):
    one, two = local_secret_key(tmp_path / "a"), local_secret_key(tmp_path / "b")
    assert one != two
    tracked = subprocess.run(["git", "grep", "-F", "-l", one], cwd=BASE_DIR, capture_output=True, text=True)
    assert tracked.stdout == ""
    assert "dev-only-insecure-key" not in (BASE_DIR / "leadmgmt" / "settings.py").read_text()


def test_an_empty_key_file_is_replaced_by_a_real_key(tmp_path):
    (tmp_path / "secret_key").write_text("\n")
    key = local_secret_key(tmp_path)
    assert len(key) >= 50 and local_secret_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_a_malformed_trusted_proxy_refuses_to_start(tmp_path):
    result = run_settings(TRUSTED_PROXIES="10.0.0.1,not-an-ip", LEADMGMT_DATA_DIR=str(tmp_path))
    assert result.returncode != 0 and "TRUSTED_PROXIES: 'not-an-ip'" in result.stderr
