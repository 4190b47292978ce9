"""One content hash for files: what code versions, data versions, model fingerprints and Dagster data versions are
made of."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

HASH_CHARS = 16
CHUNK = 1 << 20


def hash_files(files: Iterable[tuple[str, Path]]) -> str:
    """sha256 (16 hex) over (name, bytes) pairs in the given order; the name keeps a renamed file from hashing
    like the original."""
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0")
        with Path(path).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()[:HASH_CHARS]
