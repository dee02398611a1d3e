"""The ingest pipeline: input files → chunks → source transform (DuckDB) → lake.

Per chunk, all work is columnar: lines become one Arrow array, JSON validity, wrapper
expansion (``Records``/``records``/arrays), field extraction and timestamp parsing run
as one DuckDB query; rejected rows go to the dead-letter store with file, line and
reason; the rest go through :class:`LakeWriter` (dedup + atomic publish).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from mantissa.config import IngestConfig
from mantissa.lake.deadletter import DeadLetterStore, Rejection
from mantissa.lake.reader import Chunk, expand_paths, read_chunks
from mantissa.lake.storage import Storage
from mantissa.lake.writer import LakeWriter, new_batch_id
from mantissa.sources.base import (
    COMMON_COLUMNS,
    NOYEAR_MACRO,
    TIMESTAMP_MACRO,
    JsonSource,
    Source,
)

MAX_DOCUMENT_BYTES = 1024 * 1024 * 1024


@dataclass
class IngestSummary:
    source: str
    files: int = 0
    events: int = 0
    rejected: int = 0
    dead_letter: int = 0
    partitions: int = 0
    seconds: float = 0.0
    duplicates: int = 0
    skipped: int = 0
    bytes_read: int = 0
    files_written: int = 0
    dead_letter_keys: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    partition_keys: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": self.files,
            "events": self.events,
            "rejected": self.rejected,
            "dead_letter": self.dead_letter,
            "partitions": self.partitions,
            "seconds": round(self.seconds, 3),
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "bytes_read": self.bytes_read,
            "files_written": self.files_written,
            "dead_letter_files": self.dead_letter_keys,
            "reject_reasons": self.reasons,
        }


def ingest_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ingest macros loaded (UTC session)."""
    con = duckdb.connect(config={"threads": threads} if threads else {})
    con.execute("SET TimeZone='UTC'")
    con.execute("SET preserve_insertion_order=false")
    con.execute(NOYEAR_MACRO)
    con.execute(TIMESTAMP_MACRO)
    return con


class Pipeline:
    """Ingests files of one source into the lake. Reusable across many inputs."""

    def __init__(
        self,
        storage: Storage,
        source: Source,
        config: IngestConfig | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self.storage = storage
        self.source = source
        self.config = config or IngestConfig()
        self.con = con or ingest_connection()
        self.writer = LakeWriter(storage, self.con, f"logs/{source.name}")
        self.deadletter = DeadLetterStore(storage)
        self._transform_sql = source.select_sql()
        self._buf_lines: list[int] = []
        self._buf_raws: list[str] = []
        self._buf_files: list[str] = []
        self._buf_ctx: list[str | None] = []
        self._buf_bytes = 0
        self._buf_rejections: list[Rejection] = []

    # -- public ---------------------------------------------------------------
    def ingest_paths(
        self, paths: list[str], progress: Callable[[int], None] | None = None
    ) -> IngestSummary:
        summary = IngestSummary(self.source.name)
        start = time.perf_counter()
        for path in expand_paths(paths):
            summary.files += 1
            self.ingest_file(path, summary, progress)
        self.flush(summary)
        summary.seconds = time.perf_counter() - start
        summary.partitions = len(summary.partition_keys)
        return summary

    def ingest_bytes(self, data: bytes, name: str, summary: IngestSummary) -> None:
        """Ingest an in-memory body (HTTP receivers, collectors) like a file."""
        chunk = Chunk(name, data, 1, 0, is_first=True, is_last=True)
        self._process_chunks(iter([chunk]), summary, None)
        self.flush(summary)

    def ingest_file(
        self, path: str, summary: IngestSummary, progress: Callable[[int], None] | None = None
    ) -> None:
        chunks = read_chunks(path, self.config.batch_bytes)
        self._process_chunks(chunks, summary, progress)

    # -- internals --------------------------------------------------------------
    def _process_chunks(self, chunks: Any, summary: IngestSummary, progress: Any) -> None:
        document_mode = False
        doc_parts: list[bytes] = []
        doc_name = ""
        for chunk in chunks:
            summary.bytes_read += len(chunk.data)
            rejections = [
                Rejection(self.source.name, chunk.file, None, p.reason, None, offset=p.offset)
                for p in chunk.problems
            ]
            if chunk.is_first and isinstance(self.source, JsonSource):
                document_mode = _looks_like_document(chunk.data)
            if document_mode:
                doc_parts.append(chunk.data)
                doc_name = chunk.file
                if rejections:
                    self._reject(rejections, summary)
                if progress:
                    progress(len(chunk.data))
                continue
            lines, raws, extra = self._frame_lines(chunk)
            rejections.extend(extra)
            self._buffer(lines, raws, chunk.file, rejections, len(chunk.data), summary)
            if progress:
                progress(len(chunk.data))
        if document_mode:
            self._ingest_document(b"".join(doc_parts), doc_name, summary)

    def _frame_lines(self, chunk: Chunk) -> tuple[list[int], list[str], list[Rejection]]:
        text = chunk.data.decode("utf-8", errors="replace")
        parts = text.split("\n")
        if parts and parts[-1] == "":
            parts.pop()
        rejections: list[Rejection] = []
        src = self.source
        if chunk.is_first:
            self._file_ctx = src.start_file(parts[0].rstrip("\r")) if parts else None
        max_len = self.config.max_line_bytes
        lines: list[int] = []
        raws: list[str] = []
        base = chunk.first_line
        for i, line in enumerate(parts):
            if not line or line == "\r":
                continue
            if line[-1] == "\r":
                line = line[:-1]
            if len(line) > max_len:
                rejections.append(
                    Rejection(
                        src.name,
                        chunk.file,
                        base + i,
                        f"line longer than max_line_bytes ({len(line)} > {max_len})",
                        line,
                    )
                )
                continue
            if src.skip_line(line):
                continue
            lines.append(base + i)
            raws.append(line)
        return lines, raws, rejections

    def _ingest_document(self, data: bytes, name: str, summary: IngestSummary) -> None:
        src = self.source
        assert isinstance(src, JsonSource)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self._reject(
                [
                    Rejection(
                        src.name,
                        name,
                        None,
                        f"malformed JSON document: {exc}",
                        data.decode("utf-8", "replace"),
                        offset=getattr(exc, "pos", None),
                    )
                ],
                summary,
            )
            return
        records = _unwrap_document(doc, src.wrapper_keys)
        if records is None:
            self._reject(
                [
                    Rejection(
                        src.name,
                        name,
                        None,
                        "JSON document is not an object or array of objects",
                        data.decode("utf-8", "replace")[:1_000_000],
                    )
                ],
                summary,
            )
            return
        lines = list(range(1, len(records) + 1))
        raws = [orjson.dumps(r).decode() for r in records]
        self._buffer(lines, raws, f"{name}#record", [], len(data), summary)

    def _buffer(
        self,
        lines: list[int],
        raws: list[str],
        file: str,
        rejections: list[Rejection],
        nbytes: int,
        summary: IngestSummary,
    ) -> None:
        self._buf_lines.extend(lines)
        self._buf_raws.extend(raws)
        self._buf_files.extend([file] * len(lines))
        self._buf_ctx.extend([getattr(self, "_file_ctx", None)] * len(lines))
        self._buf_rejections.extend(rejections)
        self._buf_bytes += nbytes
        if self._buf_bytes >= self.config.batch_bytes:
            self.flush(summary)

    def flush(self, summary: IngestSummary) -> None:
        """Write what is buffered (many small files become one batch)."""
        lines, raws, files = self._buf_lines, self._buf_raws, self._buf_files
        ctxs = self._buf_ctx
        rejections = self._buf_rejections
        self._buf_lines, self._buf_raws, self._buf_files, self._buf_ctx = [], [], [], []
        self._buf_rejections = []
        self._buf_bytes = 0
        self._run_batch(lines, raws, files, ctxs, rejections, summary)

    def _reject(self, rejections: list[Rejection], summary: IngestSummary) -> None:
        if not rejections:
            return
        key = self.deadletter.write(self.source.name, new_batch_id(), rejections)
        summary.rejected += len(rejections)
        summary.dead_letter += len(rejections)
        if key:
            summary.dead_letter_keys.append(key)
        for r in rejections:
            reason = r.reason.split(":")[0]
            summary.reasons[reason] = summary.reasons.get(reason, 0) + 1

    def _run_batch(
        self,
        lines: list[int],
        raws: list[str],
        files: list[str],
        ctxs: list[str | None],
        rejections: list[Rejection],
        summary: IngestSummary,
    ) -> None:
        con = self.con
        src = self.source
        batch_id = new_batch_id()
        if raws:
            arrow = pa.table(
                {
                    "line": pa.array(lines, pa.int64()),
                    "raw": pa.array(raws, pa.string()),
                    "file": pa.array(files, pa.string()),
                    "ctx": pa.array(ctxs, pa.string()),
                }
            )
            con.register("_chunk", arrow)
            framed = _framing_sql(src)
            con.execute(f"CREATE OR REPLACE TEMP TABLE input AS {framed}")
            con.unregister("_chunk")
            cfg = self.config
            bad = con.execute(
                "SELECT file, line, raw, _frame_error FROM input WHERE _frame_error IS NOT NULL"
            ).fetchall()
            for file, line, raw, reason in bad:
                rejections.append(_rejection(src.name, file, line, reason, raw))
            con.execute(
                "CREATE OR REPLACE TEMP TABLE input AS SELECT line, raw, file, ctx FROM input "
                "WHERE _frame_error IS NULL"
            )
            min_time = cfg.min_event_time.replace("'", "")
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _batch AS
                SELECT t.*, coalesce(t._error,
                  CASE WHEN t._skip IS NOT NULL THEN NULL
                       WHEN t.event_time IS NULL THEN 'missing or unparseable timestamp'
                       WHEN t.event_time > now() + INTERVAL {int(cfg.max_future_secs)} SECOND
                         THEN 'timestamp in the future: ' || CAST(t.event_time AS VARCHAR)
                       WHEN t.event_time < TIMESTAMPTZ '{min_time}'
                         THEN 'timestamp before {min_time}: ' || CAST(t.event_time AS VARCHAR)
                  END) AS _reject
                FROM ({self._transform_sql}) t"""
            )
            for file, line, raw, reason in con.execute(
                "SELECT file, line, raw, _reject FROM _batch WHERE _reject IS NOT NULL "
                "ORDER BY file, line"
            ).fetchall():
                rejections.append(_rejection(src.name, file, line, reason, raw))
            skipped = con.execute(
                "SELECT count(*) FROM _batch WHERE _skip IS NOT NULL AND _reject IS NULL"
            ).fetchone()[0]  # type: ignore[index]
            summary.skipped += int(skipped)
            now = dt.datetime.now(dt.UTC).isoformat()
            cols = [c for c in COMMON_COLUMNS]
            native = [
                r[0]
                for r in con.execute("DESCRIBE _batch").fetchall()
                if r[0] not in COMMON_COLUMNS
                and r[0] not in ("line", "file", "_error", "_skip", "_reject")
            ]
            select_cols = []
            for c in cols:
                if c == "source":
                    select_cols.append(f"'{src.name}' AS source")
                elif c == "ingested_at":
                    select_cols.append(f"TIMESTAMPTZ '{now}' AS ingested_at")
                elif c == "event_id":
                    select_cols.append("coalesce(event_id, md5(raw)) AS event_id")
                elif c == "outcome":
                    select_cols.append(
                        "CASE WHEN outcome IN ('success', 'failure') THEN outcome "
                        "ELSE 'unknown' END AS outcome"
                    )
                else:
                    select_cols.append(f'"{c}"')
            select_cols += [f'"{c}"' for c in native]
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _good AS SELECT {', '.join(select_cols)} "
                f"FROM _batch WHERE _reject IS NULL AND _skip IS NULL"
            )
            result = self.writer.write("_good", batch_id)
            summary.events += result.rows
            summary.duplicates += result.duplicates
            summary.files_written += result.files
            summary.partition_keys |= result.partitions
            con.execute("DROP TABLE IF EXISTS _good")
            con.execute("DROP TABLE IF EXISTS _batch")
        self._reject(rejections, summary)


def _rejection(source: str, file: str, line: int, reason: str, raw: str | None) -> Rejection:
    """Rows of JSON documents are numbered by record, not line: say so in the reason."""
    if file.endswith("#record"):
        return Rejection(
            source, file.removesuffix("#record"), None, f"{reason} (record {line})", raw
        )
    return Rejection(source, file, line, reason, raw)


def _framing_sql(src: Source) -> str:
    """Rows of ``_chunk`` → ``input(line, raw, _frame_error)``; JSON is validated and expanded."""
    if not isinstance(src, JsonSource):
        return "SELECT line, raw, file, ctx, NULL::VARCHAR AS _frame_error FROM _chunk"
    expand_parts = ["WHEN jt = 'ARRAY' THEN json_extract(raw, '$[*]')"]
    for key in src.wrapper_keys:
        k = key.replace("'", "''")
        expand_parts.append(
            f"WHEN json_type(raw, '$.{k}') = 'ARRAY' THEN json_extract(raw, '$.{k}[*]')"
        )
    expand = "CASE " + " ".join(expand_parts) + " ELSE [raw::JSON] END"
    return f"""
    WITH v AS (
      SELECT line, raw, file, ctx, json_valid(raw) AS ok,
             CASE WHEN json_valid(raw) THEN json_type(raw) END AS jt
      FROM _chunk
    ),
    expanded AS (
      SELECT line, file, ctx, CAST(UNNEST({expand}) AS VARCHAR) AS raw FROM v
      WHERE ok AND jt IN ('OBJECT', 'ARRAY')
    )
    SELECT line, raw, file, ctx,
      CASE WHEN json_type(raw) <> 'OBJECT' THEN 'not a JSON object: ' || json_type(raw) END AS _frame_error
    FROM expanded
    UNION ALL
    SELECT line, raw, file, ctx,
      CASE WHEN NOT ok THEN 'malformed JSON' ELSE 'not a JSON object: ' || jt END
    FROM v WHERE NOT ok OR jt NOT IN ('OBJECT', 'ARRAY')
    """


def _looks_like_document(data: bytes) -> bool:
    """True when the input is one JSON document spread over lines (not NDJSON)."""
    stripped = data.lstrip()
    if stripped[:1] not in (b"{", b"["):
        return False
    first = stripped.split(b"\n", 1)[0].strip()
    try:
        orjson.loads(first)
        return False
    except orjson.JSONDecodeError:
        return True


def _unwrap_document(doc: Any, keys: tuple[str, ...]) -> list[Any] | None:
    if isinstance(doc, list):
        out: list[Any] = []
        for item in doc:
            sub = _unwrap_document(item, keys) if isinstance(item, dict) else None
            out.extend(sub if sub is not None else [item])
        return out
    if isinstance(doc, dict):
        for k in keys:
            if isinstance(doc.get(k), list):
                return list(doc[k])
        return [doc]
    return None
