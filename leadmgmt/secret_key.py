"""The secret key of local runs and tests: random per install, kept under the data dir, never in the repo."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "secret_key"


def default_data_dir() -> Path:
    """LEADMGMT_DATA_DIR, else `.data/` in the checkout (the embedded services' directory)."""
    return Path(os.environ.get("LEADMGMT_DATA_DIR") or Path(__file__).resolve().parent.parent / ".data")


def local_secret_key(data_dir: Path | None = None) -> str:
    """Read `<data dir>/secret_key`, creating it (mode 0600, 50 random bytes) on first use.

    Creation is atomic: the key is written to a private temporary file and hard-linked into place,
    so concurrent first starts (web, worker, beat, pytest-xdist) all end up with the same key.
    """
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    path = directory / FILE_NAME
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50) + "\n")
        if path.exists():
            os.replace(tmp, path)  # an empty file (never written by us: we link whole files) is no key
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race; use its key
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
