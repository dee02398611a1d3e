"""The ingest pipeline: input files → chunks → source transform (DuckDB) → lake.

Per chunk, all work is columnar: lines become one Arrow array, JSON validity, wrapper
expansion (``Records``/``records``/arrays), field extraction and timestamp parsing run
as one DuckDB query; rejected rows go to the dead-letter store with file, line and
reason; the rest go through :class:`LakeWriter` (dedup + atomic publish).
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

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
    config: dict[str, Any] = {"memory_limit": "1GB"}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(config=config)
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
        delivery_ids: bool = False,
    ) -> None:
        self.storage = storage
        self.source = source
        #: push receivers: every body is one delivery with a unique name (``file``); records
        #: without a vendor id get ``md5(file, line)``, so a retried delivery dedups
        #: while identical lines of distinct deliveries (or of one) are distinct events
        self.delivery_ids = delivery_ids
        self.config = config or IngestConfig()
        self.con = con or ingest_connection()
        self.writer = LakeWriter(storage, self.con, f"logs/{source.name}")
        self.deadletter = DeadLetterStore(storage)
        self._transform_sql = source.select_sql()
        self._buf_bytes = 0
        self._file_ctx: str | None = None
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE _pending "
            "(line BIGINT, raw VARCHAR, file VARCHAR, ctx VARCHAR)"
        )
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

    def ingest_parts(self, parts: list[tuple[bytes, str]], summary: IngestSummary) -> None:
        """Ingest several bodies (one per delivery, each with its own name) in one write."""
        for data, name in parts:
            self._process_chunks(
                iter([Chunk(name, data, 1, 0, is_first=True, is_last=True)]), summary, None
            )
        self.flush(summary)

    def ingest_file(
        self, path: str, summary: IngestSummary, progress: Callable[[int], None] | None = None
    ) -> None:
        chunks = read_chunks(path, self.config.batch_bytes)
        self._process_chunks(_prefetch(chunks, self.source), summary, progress)

    # -- internals --------------------------------------------------------------
    def _process_chunks(self, chunks: Any, summary: IngestSummary, progress: Any) -> None:
        document_mode = False
        csv_mode = False
        doc_parts: list[bytes] = []
        doc_name = ""
        for item in chunks:
            # a prefetched chunk comes with its lines already split (``_prefetch``)
            chunk, rows = item if isinstance(item, tuple) else (item, None)
            summary.bytes_read += len(chunk.data)
            rejections = [
                Rejection(self.source.name, chunk.file, None, p.reason, None, offset=p.offset)
                for p in chunk.problems
            ]
            if chunk.is_first and isinstance(self.source, JsonSource):
                document_mode = _looks_like_document(chunk.data)
                csv_mode = self.source.csv and _looks_like_csv(chunk.data)
            if document_mode or csv_mode:
                doc_parts.append(chunk.data)
                doc_name = chunk.file
                if rejections:
                    self._reject(rejections, summary)
                if progress:
                    progress(len(chunk.data))
                continue
            lines, raws, extra = self._frame_lines(chunk, rows)
            rejections.extend(extra)
            self._buffer(lines, raws, chunk.file, rejections, len(chunk.data), summary)
            if progress:
                progress(len(chunk.data))
        if document_mode or csv_mode:
            self._ingest_whole(b"".join(doc_parts), doc_name, csv_mode, summary)

    def _ingest_whole(self, data: bytes, name: str, csv_mode: bool, summary: IngestSummary) -> None:
        if csv_mode:
            self._ingest_csv(data, name, summary)
        else:
            self._ingest_document(data, name, summary)

    def _ingest_csv(self, data: bytes, name: str, summary: IngestSummary) -> None:
        """A CSV file with a header row: each row becomes a JSON object (columnar, Arrow→DuckDB).

        Values stay strings as exported (Salesforce EventLogFile bodies, Snowflake
        ``ACCOUNT_USAGE`` exports); quoted fields may hold commas, quotes and newlines.
        """
        import csv

        import pyarrow.csv as pacsv

        src = self.source
        bad_rows: list[Rejection] = []

        def invalid_row(row: Any) -> str:
            # a row with the wrong number of fields: dead-letter it, keep the others
            bad_rows.append(
                Rejection(
                    src.name,
                    name,
                    row.number,
                    f"malformed CSV row: {row.actual_columns} fields, header has "
                    f"{row.expected_columns}",
                    row.text,
                )
            )
            return "skip"

        try:
            first = data.split(b"\n", 1)[0].decode("utf-8-sig").strip("\r")
            header = next(csv.reader([first]))
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True, invalid_row_handler=invalid_row
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in header},
                    # an unquoted empty field is NULL, a quoted "" an empty string
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, csv.Error) as exc:
            self._reject(
                [
                    Rejection(
                        src.name,
                        name,
                        None,
                        f"malformed CSV: {exc}",
                        data.decode("utf-8", "replace")[:1_000_000],
                    )
                ],
                summary,
            )
            return
        self.con.register("_csv", table)
        try:
            raws = [
                r[0]
                for r in self.con.execute(
                    "SELECT CAST(to_json(_csv) AS VARCHAR) FROM _csv"
                ).fetchall()
            ]
        finally:
            self.con.unregister("_csv")
        # the header is line 1; a row's number is its record number + 1 (exact unless a
        # quoted value spans lines or a malformed row was set aside)
        self._buffer(list(range(2, len(raws) + 2)), raws, name, bad_rows, len(data), summary)

    def _frame_lines(
        self, chunk: Chunk, rows: pa.Table | None = None
    ) -> tuple[list[int], list[str], list[Rejection]]:
        """Queue a chunk's lines in DuckDB: split, numbered and ``\\r``-stripped there.

        Returns nothing to buffer in Python on the columnar path (empty lists); a source
        that overrides :meth:`Source.skip_line` takes the line-by-line path instead.
        """
        data = chunk.data
        src = self.source
        if chunk.is_first:
            first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
            self._file_ctx = src.start_file(first) if data else None
        if type(src).skip_line is not Source.skip_line:
            return self._frame_lines_python(chunk, data.decode("utf-8", errors="replace"))
        if data:
            if rows is None:
                rows = _split_lines(data, chunk.first_line)
            self.con.register("_rows", rows)
            self.con.execute(
                "INSERT INTO _pending SELECT line, raw, $file, $ctx FROM _rows",
                {"file": chunk.file, "ctx": self._file_ctx},
            )
            self.con.unregister("_rows")
        return [], [], []

    def _frame_lines_python(
        self, chunk: Chunk, text: str
    ) -> tuple[list[int], list[str], list[Rejection]]:
        parts = text.split("\n")
        if parts and parts[-1] == "":
            parts.pop()
        src = self.source
        lines: list[int] = []
        raws: list[str] = []
        base = chunk.first_line
        for i, line in enumerate(parts):
            line = line.rstrip("\r")
            if line and not src.skip_line(line):
                lines.append(base + i)
                raws.append(line)
        return lines, raws, []

    def _ingest_document(self, data: bytes, name: str, summary: IngestSummary) -> None:
        src = self.source
        assert isinstance(src, JsonSource)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            docs, rest = _split_concatenated(data)
            if docs:
                # several documents one after another (pretty-printed streams, e.g. the
                # Falcon Streaming API as saved by collectors): each is a document
                if rest is not None:
                    self._reject(
                        [
                            Rejection(
                                src.name,
                                name,
                                None,
                                f"malformed JSON document after {len(docs)} documents",
                                rest[0][:1_000_000],
                                offset=rest[1],
                            )
                        ],
                        summary,
                    )
                self._ingest_documents(docs, data, name, summary)
                return
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
        self._ingest_documents([doc], data, name, summary)

    def _ingest_documents(
        self, docs: list[Any], data: bytes, name: str, summary: IngestSummary
    ) -> None:
        src = self.source
        assert isinstance(src, JsonSource)
        records = _unwrap_document(docs if len(docs) > 1 else docs[0], src.wrapper_keys)
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
        if lines:
            table = pa.table(
                {
                    "line": pa.array(lines, pa.int64()),
                    "raw": pa.array(raws, pa.string()),
                    "file": pa.array([file] * len(lines), pa.string()),
                    "ctx": pa.array([getattr(self, "_file_ctx", None)] * len(lines), pa.string()),
                }
            )
            self.con.register("_rows", table)
            self.con.execute("INSERT INTO _pending SELECT line, raw, file, ctx FROM _rows")
            self.con.unregister("_rows")
        self._buf_rejections.extend(rejections)
        self._buf_bytes += nbytes
        if self._buf_bytes >= self.config.batch_bytes:
            self.flush(summary)

    def flush(self, summary: IngestSummary) -> None:
        """Write what is queued (many small files become one batch)."""
        rejections = self._buf_rejections
        self._buf_rejections = []
        self._buf_bytes = 0
        self._run_batch(rejections, summary)
        self.con.execute("DELETE FROM _pending")

    def dead_letter(self, rejections: list[Rejection], summary: IngestSummary) -> None:
        """Store records a caller could not decode (collectors) in the dead-letter store."""
        self._reject(rejections, summary)

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

    def _run_batch(self, rejections: list[Rejection], summary: IngestSummary) -> None:
        con = self.con
        src = self.source
        cfg = self.config
        batch_id = new_batch_id()
        max_len = int(cfg.max_line_bytes)
        for file, line, raw, n in con.execute(
            f"SELECT file, line, raw, strlen(raw) FROM _pending WHERE strlen(raw) > {max_len}"
        ).fetchall():
            rejections.append(
                _rejection(
                    src.name, file, line, f"line longer than max_line_bytes ({n} > {max_len})", raw
                )
            )
        skip = f"AND NOT coalesce(({src.skip_sql}), false)" if src.skip_sql else ""
        con.execute(
            "CREATE OR REPLACE TEMP VIEW _chunk AS SELECT line, raw, file, ctx FROM _pending "
            f"WHERE strlen(raw) <= {max_len} AND raw <> '' {skip}"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE input AS {_framing_sql(src)}")
        if isinstance(src, JsonSource):
            _expand_json(con, src)
        if con.execute("SELECT count(*) FROM input").fetchone()[0]:  # type: ignore[index]
            bad = con.execute(
                "SELECT file, line, raw, _frame_error FROM input WHERE _frame_error IS NOT NULL"
            ).fetchall()
            for file, line, raw, reason in bad:
                rejections.append(_rejection(src.name, file, line, reason, raw))
            if bad:
                con.execute("DELETE FROM input WHERE _frame_error IS NOT NULL")
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
            native = [
                r[0]
                for r in con.execute("DESCRIBE _batch").fetchall()
                if r[0] not in COMMON_COLUMNS
                and r[0] not in ("line", "file", "_error", "_skip", "_reject")
            ]
            select_cols = []
            for c in COMMON_COLUMNS:
                if c == "source":
                    select_cols.append(f"'{src.name}' AS source")
                elif c == "ingested_at":
                    select_cols.append(f"TIMESTAMPTZ '{now}' AS ingested_at")
                elif c == "event_id":
                    select_cols.append(_event_id_sql(src, self.delivery_ids))
                elif c == "outcome":
                    select_cols.append(
                        "CASE WHEN outcome IN ('success', 'failure') THEN outcome "
                        "ELSE 'unknown' END AS outcome"
                    )
                else:
                    select_cols.append(f'"{c}"')
            select_cols += [f'"{c}"' for c in native]
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW _good AS SELECT {', '.join(select_cols)} "
                f"FROM _batch WHERE _reject IS NULL AND _skip IS NULL"
            )
            result = self.writer.write("_good", batch_id)
            summary.events += result.rows
            summary.duplicates += result.duplicates
            summary.files_written += result.files
            summary.partition_keys |= result.partitions
            con.execute("DROP VIEW IF EXISTS _good")
            con.execute("DROP TABLE IF EXISTS _batch")
            con.execute("DROP TABLE IF EXISTS input")
        self._reject(rejections, summary)


def _event_id_sql(src: Source, delivery_ids: bool) -> str:
    """The stored ``event_id``: the source's (vendor) id, else a content hash.

    For push receivers (``delivery_ids``) the hash covers the delivery's name and the
    record's position in it, and replaces the content hashes of sources that have no vendor
    id (``content_ids``: syslog, CEF), whose numbering only spans one body.
    """
    if not delivery_ids:
        return "coalesce(event_id, md5(raw)) AS event_id"
    # the delivery (its name hashes the request, or is unique per syslog batch) and the
    # record's line in it: a receipt time added to the record does not change the id
    per_delivery = "md5(file || '#' || CAST(line AS VARCHAR))"
    if getattr(src, "content_ids", False):
        return f"{per_delivery} AS event_id"
    return f"coalesce(event_id, {per_delivery}) AS event_id"


def _rejection(source: str, file: str, line: int, reason: str, raw: str | None) -> Rejection:
    """Rows of JSON documents are numbered by record, not line: say so in the reason."""
    if file.endswith("#record"):
        return Rejection(
            source, file.removesuffix("#record"), None, f"{reason} (record {line})", raw
        )
    return Rejection(source, file, line, reason, raw)


def _framing_sql(src: Source) -> str:
    """Rows of ``_chunk`` → ``input(line, raw, file, ctx, _frame_error, _wrapped)`` in one pass.

    JSON lines are validated; plain objects pass through untouched (the original text is
    kept as ``raw``). Arrays and wrapper documents (``Records`` ...) are flagged
    ``_wrapped`` and expanded by :func:`_expand_json`.
    """
    if not isinstance(src, JsonSource):
        return (
            "SELECT line, raw, file, ctx, NULL::VARCHAR AS _frame_error, false AS _wrapped "
            "FROM _chunk WHERE trim(raw) <> ''"
        )
    hints = "".join(
        f" OR contains(raw, '\"{k.replace(chr(39), chr(39) * 2)}\"')" for k in src.wrapper_keys
    )
    return f"""
    SELECT line, raw, file, ctx,
      CASE WHEN NOT json_valid(raw) THEN (CASE WHEN trim(raw) = '' THEN '' ELSE 'malformed JSON' END)
           WHEN left(ltrim(raw), 1) NOT IN ('{{', '[')
             THEN 'not a JSON object: ' || json_type(raw) END AS _frame_error,
      json_valid(raw) AND (left(ltrim(raw), 1) = '['{hints}) AS _wrapped
    FROM _chunk
    """


def _expand_json(con: duckdb.DuckDBPyConnection, src: JsonSource) -> None:
    """Expand flagged arrays / wrapper documents in ``input`` to one row per element."""
    con.execute("DELETE FROM input WHERE _frame_error = ''")  # blank lines
    if not con.execute("SELECT count(*) FROM input WHERE _wrapped").fetchone()[0]:  # type: ignore[index]
        return
    parts = ["WHEN left(ltrim(raw), 1) = '[' THEN json_extract(raw, '$[*]')"]
    for key in src.wrapper_keys:
        k = key.replace("'", "''")
        parts.append(f"WHEN json_type(raw, '$.{k}') = 'ARRAY' THEN json_extract(raw, '$.{k}[*]')")
    expand = "CASE " + " ".join(parts) + " ELSE [raw::JSON] END"
    con.execute(
        f"""INSERT INTO input
        SELECT line, raw, file, ctx,
          CASE WHEN json_type(raw) <> 'OBJECT' THEN 'not a JSON object: ' || json_type(raw) END,
          false
        FROM (SELECT line, file, ctx, CAST(UNNEST({expand}) AS VARCHAR) AS raw
              FROM input WHERE _wrapped)"""
    )
    con.execute("DELETE FROM input WHERE _wrapped")


_END = object()


def _prefetch(chunks: Iterator[Chunk], src: Source) -> Iterator[tuple[Chunk, pa.Table | None]]:
    """Read the next chunk (and split it into lines) in a thread while DuckDB works on this one.

    File reads, gunzip and the Arrow split release the GIL, so they overlap the transform
    and the Parquet write. At most two chunks wait ahead; an error in the reader is raised
    here, in order; leaving early stops the thread.
    """
    out: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()
    columnar = type(src).skip_line is Source.skip_line

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        split = columnar
        try:
            for chunk in chunks:
                if chunk.is_first and isinstance(src, JsonSource):
                    # whole documents and CSV files are parsed whole, not line by line
                    split = columnar and not (
                        _looks_like_document(chunk.data)
                        or (src.csv and _looks_like_csv(chunk.data))
                    )
                rows = _split_lines(chunk.data, chunk.first_line) if split and chunk.data else None
                if not put((chunk, rows)):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consuming thread, raised there
            put(exc)

    thread = threading.Thread(target=run, name="ingest-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the reader ends at its next hand-over (a blocked stdin read: when it returns)
        thread.join(timeout=1)


def _split_lines(data: bytes, first_line: int) -> pa.Table:
    """``data`` as a table of ``(line, raw)``: one row per line, split in Arrow (no Python
    string per line). ``\r\n`` ends a line like ``\n``; invalid UTF-8 becomes U+FFFD."""
    try:
        text = pa.array([data], pa.large_binary()).cast(pa.large_string())
    except pa.ArrowInvalid:
        text = pa.array([data.decode("utf-8", errors="replace")], pa.large_string())
    if b"\r" in data:
        text = pc.replace_substring(text, "\r\n", "\n")
    raws = pc.split_pattern(text, "\n").flatten()
    if len(raws) and not raws[len(raws) - 1].as_py():
        raws = raws.slice(0, len(raws) - 1)  # the text ends with a newline
    lines = pa.array(range(first_line, first_line + len(raws)), pa.int64())
    return pa.table({"line": lines, "raw": raws})


def _looks_like_csv(data: bytes) -> bool:
    """True when the first line is a CSV header (not JSON): quoted or bare names and commas."""
    first = data.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip()
    if not first or first[:1] in (b"{", b"[") or b"," not in first:
        return False
    names = [n.strip().strip(b'"') for n in first.split(b",")]
    return all(n and len(n) < 128 and b"{" not in n for n in names)


def _split_concatenated(data: bytes) -> tuple[list[Any], tuple[str, int] | None]:
    """Concatenated JSON values (``{...}{...}`` or pretty-printed ones in a row).

    Returns the values parsed and, when something unparseable follows, that text and its
    character offset. Only used when a whole input is not one JSON document.
    """
    import json

    text = data.decode("utf-8", "replace")
    dec = json.JSONDecoder()
    out: list[Any] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return out, None
        try:
            val, pos = dec.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return out, (text[pos:], pos)
        out.append(val)


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
            # a dotted key names a nested list (Duo: response.authlogs), as in the SQL path
            val: Any = doc
            for part in k.split("."):
                val = val.get(part) if isinstance(val, dict) else None
            if isinstance(val, list):
                return list(val)
        return [doc]
    return None
