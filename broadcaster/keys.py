"""The panel's Ed25519 signing key: created once, kept in a 0600 file in the data directory.

Secrets at rest (``secure_data_dir``, run by ``create_app`` before anything is opened): the data directory is
0700 (the database, media, keys, the embedded broker's files and the simulator's credentials all live in it),
and the files that hold secrets — the SQLite database (and its ``-wal`` / ``-shm`` / ``-journal``), the signing
key, the Flask secret, the bootstrap admin's password, the demo nodes' tokens, the broker's dynamic-security
JSON — are 0600. They are created that way (``os.open`` with the mode; SQLite gives its side files the mode of
the database file), and one found looser at start (an older installation, a copy, a restore) is tightened,
with a warning.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: Files in the data directory that hold secrets (besides the database and the signing key, which may be
#: configured elsewhere).
SECRET_FILES = ("secret_key", "panel-ed25519.key", "admin-password.txt", "sim/credentials.json",
                "broker/dynamic-security.json")


def tighten(path: Path, mode: int) -> bool:
    """Take away every permission of ``path`` beyond ``mode`` (0700 / 0600); True if it was looser."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if current & ~mode:
        try:
            path.chmod(current & mode)
        except PermissionError:  # not ours (e.g. a volume owned by another user): say so, keep running
            log.warning("%s is readable by others (%o) and cannot be tightened to %o: fix its owner or mode",
                        path, current, current & mode)
            return False
        log.warning("%s was readable by others (%o): now %o", path, current, current & mode)
        return True
    return False


def private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or tighten it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    tighten(path, PRIVATE_DIR_MODE)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write a secret file: created 0600 (never readable by others, not even for a moment), tightened if it was
    looser."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    tighten(path, PRIVATE_FILE_MODE)


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL (None for another database or an in-memory one)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database)


def secure_data_dir(config: Any) -> None:
    """The data directory 0700 and its secret files 0600 (created so, or tightened); see the module doc."""
    data_dir = private_dir(Path(config.DATA_DIR))
    for name in SECRET_FILES:
        tighten(data_dir / name, PRIVATE_FILE_MODE)
    tighten(Path(config.SIGNING_KEY_PATH), PRIVATE_FILE_MODE)
    db_file = sqlite_path(config.DATABASE_URL)
    if db_file is not None:
        if not db_file.exists() and db_file.parent.is_dir():
            # An empty file is an empty SQLite database; SQLite creates -wal / -shm with the database's mode.
            os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
        for suffix in ("", "-wal", "-shm", "-journal"):
            tighten(db_file.with_name(db_file.name + suffix), PRIVATE_FILE_MODE)


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        tighten(path, PRIVATE_FILE_MODE)
        key = load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def load_or_create_secret(path: Path) -> str:
    if path.exists():
        tighten(path, PRIVATE_FILE_MODE)
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32).hex()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret
