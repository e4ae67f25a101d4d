"""Content-addressed storage for invoice PDFs. Local directory now; the interface fits S3 later."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024


class BlobStore(Protocol):
    def put(self, data: bytes) -> tuple[str, str]:
        """Store `data`; return (key, sha256 hex). Storing the same bytes twice is a no-op."""
        ...

    def read_chunks(self, key: str) -> Iterator[bytes]: ...

    def read(self, key: str) -> bytes: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...


class BlobNotFound(Exception):
    pass


class LocalBlobStore:
    """Blobs under `root/sha256/ab/abcdef…`, written atomically (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        algo, _, digest = key.partition(":")
        if (
            algo != "sha256"
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes) -> tuple[str, str]:
        digest = hashlib.sha256(data).hexdigest()
        key = f"sha256:{digest}"
        path = self._path(key)
        if path.exists():
            return key, digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key, digest

    def read_chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def read(self, key: str) -> bytes:
        return b"".join(self.read_chunks(key))

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).exists()
