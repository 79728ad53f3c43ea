"""Artifact storage behind one small interface; the default keeps files content-addressed in a local folder.

    store = LocalArtifactStore("studio-data/artifacts")
    key = store.put(png_bytes, ".png")          # "ab/cd/abcd...ef.png": the sha256 names the file
    data = store.read(key)

Writes are atomic (temporary file, fsync, rename), so a crash never leaves half a file under a real key,
and equal content is stored once. Keys are checked before any file system access: a key is exactly the
shape `put` makes, so no caller can reach outside the root (no path traversal).
"""

from __future__ import annotations

import hashlib
import re
import threading
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aigc.files import atomic_write_bytes

_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})(\.[a-z0-9]{1,8})?$")
_SUFFIX = re.compile(r"^(\.[a-z0-9]{1,8})?$")


class ArtifactStore(ABC):
    """Where artifact bytes live. Keys are content addresses; the database holds everything else."""

    @abstractmethod
    def put(self, data: bytes, suffix: str = "") -> str: ...

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    def put_many(self, items: list[tuple[bytes, str]]) -> list[str]:
        """Store several (data, suffix) pairs; stores may do this faster than one by one."""
        return [self.put(data, suffix) for data, suffix in items]

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a key's bytes (gone already is fine): a deleted job's files."""

    def local_path(self, key: str) -> Path | None:
        """A file path for streaming responses, when the store has one."""
        return None


def content_key(data: bytes, suffix: str = "") -> tuple[str, str]:
    """(sha256 hex, key) of some bytes."""
    if not _SUFFIX.match(suffix):
        raise ValueError(f"artifact suffix must be like '.png', got {suffix!r}")
    digest = hashlib.sha256(data).hexdigest()
    return digest, f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise KeyError(f"not an artifact key: {key!r}")
    return key


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _writers() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="aigc-store")
        return _POOL


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):  # unreachable with checked keys; a second lock on the door
            raise KeyError(f"not an artifact key: {key!r}")
        return path

    def put(self, data: bytes, suffix: str = "") -> str:
        _, key = content_key(data, suffix)
        path = self._path(key)
        if not path.exists():  # same content, same name: already stored whole (writes are atomic)
            atomic_write_bytes(path, data)
        return key

    def put_many(self, items: list[tuple[bytes, str]]) -> list[str]:
        # Each file is fsynced before its rename; fsyncs issued together share the file system's journal
        # commits, so a job's images cost about one disk flush instead of one each (measured: 16 PNGs 65 -> 20 ms).
        if len(items) <= 1:
            return [self.put(data, suffix) for data, suffix in items]
        return list(_writers().map(lambda item: self.put(*item), items))

    def read(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except KeyError:
            return False

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None
