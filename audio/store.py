"""Content-addressed media store: every file is named by the SHA-256 of its bytes.

Nodes fetch media by hash and verify it, so a name can never point at different content, writes are
idempotent, and a file is either absent or complete (written to a temporary name, then renamed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MediaInfo", "MediaStore"]

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_EXT_RE = re.compile(r"[a-z0-9]{1,8}")
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class MediaInfo:
    sha256: str
    size: int
    path: Path


class MediaStore:
    """Flat directory of ``<sha256>.<ext>`` files."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str, ext: str = "mp3") -> Path:
        """Where the file with this hash lives. Rejects anything but 64 lowercase hex digits."""
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            raise ValueError("sha256 must be 64 lowercase hexadecimal characters")
        if not isinstance(ext, str) or not _EXT_RE.fullmatch(ext):
            raise ValueError("extension must be 1-8 lowercase letters or digits")
        return self.root / f"{sha256}.{ext}"

    def exists(self, sha256: str, ext: str = "mp3") -> bool:
        return self.path(sha256, ext).is_file()

    def put(self, data: bytes, ext: str = "mp3") -> MediaInfo:
        """Store ``data`` (idempotent) and describe it."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.path(digest, ext)
        if final.is_file() and final.stat().st_size == len(data):
            return MediaInfo(sha256=digest, size=len(data), path=final)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=f".{ext}", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the web server must read media
            os.replace(tmp_name, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return MediaInfo(sha256=digest, size=len(data), path=final)
