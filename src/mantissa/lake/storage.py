"""Where lake objects live. Code above this interface uses keys, never ``os.path``.

A key is a relative POSIX path such as ``logs/okta/year=2026/month=01/.../b.parquet``.
:class:`LocalStorage` is the embedded default; object stores (S3, GCS, Azure Blob)
implement the same interface through pyarrow/fsspec filesystems.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage(ABC):
    """A flat key space with atomic object writes."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The location of ``key`` as the query engine reads it (path or URL)."""

    @abstractmethod
    def list(self, prefix: str, suffix: str = "") -> Iterator[ObjectInfo]:
        """Committed objects under ``prefix`` (recursively), hidden/temp names excluded."""

    @abstractmethod
    def put_file(self, local_path: str | Path, key: str) -> None:
        """Publish a local file at ``key`` atomically (readers see all of it or nothing)."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def scratch_dir(self) -> Path:
        """A local directory for staging files before they are published."""

    def is_local(self) -> bool:
        return False

    def publish(self, files: dict[str, Path], remove: Iterable[str] = ()) -> None:
        """Publish several local files (key → path) and retire ``remove`` keys.

        Object stores commit the whole set in one marker per partition (see
        ``lake/objectstore.py``); the local folder publishes file by file.
        """
        for key, local in files.items():
            self.put_file(local, key)
        for key in remove:
            self.delete(key)

    def attach(self, con: Any) -> None:  # noqa: B027 - optional hook
        """Let a DuckDB connection read :meth:`uri` locations (object stores register a filesystem)."""

    def describe(self) -> str:
        """Where the lake is, for messages (no credentials)."""
        return self.uri()


def _hidden(name: str) -> bool:
    return name.startswith((".", "_")) or name.endswith(".tmp")


class LocalStorage(Storage):
    """A folder on the local disk; publication is ``os.replace`` (atomic on POSIX)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def is_local(self) -> bool:
        return True

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if p != self.root and self.root not in p.parents:
            raise ValueError(f"key {key!r} escapes the lake root")
        return p

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def list(self, prefix: str, suffix: str = "") -> Iterator[ObjectInfo]:
        base = self._path(prefix)
        if not base.exists():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            for name in sorted(filenames):
                if _hidden(name) or not name.endswith(suffix):
                    continue
                full = Path(dirpath) / name
                try:
                    size = full.stat().st_size
                except FileNotFoundError:
                    continue
                yield ObjectInfo(full.relative_to(self.root).as_posix(), size)

    def put_file(self, local_path: str | Path, key: str) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = Path(local_path)
        try:
            os.replace(src, dest)
        except OSError:
            # different filesystem: copy next to the destination, then rename
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
            src.unlink(missing_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def scratch_dir(self) -> Path:
        d = self.root / ".staging"
        d.mkdir(parents=True, exist_ok=True)
        return d


def open_storage(url: str | None, default_root: Path, endpoint_url: str | None = None) -> Storage:
    """Open the lake at ``url``: a local path, or ``s3://``, ``gs://``, ``az://`` object storage."""
    if url is None:
        return LocalStorage(default_root)
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0].lower()
        from mantissa.lake.objectstore import SCHEMES, ObjectStorage

        if scheme not in SCHEMES:
            from mantissa.errors import ConfigError

            raise ConfigError(
                f"lake url scheme {scheme!r} is not supported",
                hint="use a local path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix",
            )
        return ObjectStorage(url, endpoint_url=endpoint_url, scratch=default_root / ".staging")
    return LocalStorage(url.removeprefix("file://"))
