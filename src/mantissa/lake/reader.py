"""Reading ingest input: files, directories (recursive), ``.gz`` files and stdin.

Input is cut into chunks of whole lines (``batch_bytes`` each) so memory stays bounded
whatever the file size. A truncated gzip yields what decompressed cleanly plus a
:class:`ReadProblem` naming the byte offset; nothing raises out of here for bad data.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mantissa.errors import IngestError

_READ_BLOCK = 4 * 1024 * 1024


@dataclass
class ReadProblem:
    offset: int
    reason: str


@dataclass
class Chunk:
    """Whole lines of one input file: ``data`` starts at line ``first_line`` (1-based)."""

    file: str
    data: bytes
    first_line: int
    offset: int
    is_first: bool
    is_last: bool = False
    problems: list[ReadProblem] = field(default_factory=list)


def expand_paths(paths: list[str]) -> list[str]:
    """Files named, files under directories (sorted, hidden skipped), ``-`` for stdin."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append("-")
            continue
        path = Path(p)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        out.append(str(Path(dirpath) / name))
        elif path.is_file():
            out.append(str(path))
        else:
            raise IngestError(f"input {p} does not exist", hint="give files, directories or -")
    return out


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")


def _is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


class _GzipStream:
    """Decompresses a gzip stream (multi-member too) and records truncation/corruption."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self.consumed = 0
        self.problem: ReadProblem | None = None
        self.done = False

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n and not self.done:
            block = self.raw.read(_READ_BLOCK)
            if not block:
                if not self.d.eof:
                    self.problem = ReadProblem(self.consumed, "truncated gzip stream")
                self.done = True
                break
            self.consumed += len(block)
            data = block
            while data:
                try:
                    out += self.d.decompress(data)
                except zlib.error as exc:
                    self.problem = ReadProblem(self.consumed, f"corrupt gzip data: {exc}")
                    self.done = True
                    break
                if self.d.eof:
                    data = self.d.unused_data
                    if data and data[:2] == b"\x1f\x8b":
                        self.d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                        continue
                    if data.strip(b"\x00"):
                        self.problem = ReadProblem(self.consumed, "trailing garbage after gzip")
                    data = b""
                else:
                    break
        return bytes(out)


def read_chunks(path: str, batch_bytes: int) -> Iterator[Chunk]:
    """Yield chunks of whole lines from ``path`` (decompressing gzip by magic number)."""
    fh = _open(path)
    name = "<stdin>" if path == "-" else path
    try:
        head = fh.read(2)
        if _is_gzip(head):
            gz = _GzipStream(_Prefixed(head, fh))
            reader = gz.read
        else:
            gz = None
            pre = _Prefixed(head, fh)
            reader = pre.read
        carry = b""
        line_no = 1
        offset = 0
        first = True
        while True:
            block = reader(batch_bytes)
            eof = not block
            data = carry + block
            if not eof:
                cut = data.rfind(b"\n")
                if cut < 0 and len(data) < batch_bytes * 4:
                    carry = data
                    continue
                if cut < 0:
                    cut = len(data) - 1  # a single enormous line: emit it as is
                carry = data[cut + 1 :]
                data = data[: cut + 1]
            else:
                carry = b""
            if data or first or eof:
                chunk = Chunk(name, data, line_no, offset, is_first=first, is_last=eof)
                if eof and gz is not None and gz.problem is not None:
                    chunk.problems.append(gz.problem)
                if data or eof:
                    yield chunk
                first = False
                line_no += data.count(b"\n")
                offset += len(data)
            if eof:
                break
    finally:
        if path != "-":
            fh.close()


class _Prefixed:
    """A stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, fh: BinaryIO) -> None:
        self.prefix = prefix
        self.fh = fh

    def read(self, n: int) -> bytes:
        if self.prefix:
            p, self.prefix = self.prefix, b""
            return p + self.fh.read(max(n - len(p), 0))
        return self.fh.read(n)


def read_whole(path: str, limit: int) -> tuple[bytes, list[ReadProblem]]:
    """Read a whole (small) document file, decompressing gzip; for JSON documents."""
    data = b""
    problems: list[ReadProblem] = []
    for chunk in read_chunks(path, limit):
        data += chunk.data
        problems.extend(chunk.problems)
    return data, problems
