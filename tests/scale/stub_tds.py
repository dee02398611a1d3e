"""A TDS 7.4 server stub on 127.0.0.1 standing in for a Synapse serverless SQL endpoint.

It speaks the wire protocol of MS-TDS (https://learn.microsoft.com/openspecs/windows_protocols/ms-tds):
packets with the 8-byte header; PRELOGIN (answering ``ENCRYPT_NOT_SUP``: tests run
without TLS); LOGIN7 with the password de-obfuscated and checked (a wrong one gets error
18456 as SQL Server sends it, an unknown database error 4060); SQL batches with their
ALL_HEADERS; ATTENTION. Answers are COLMETADATA / ROW / DONE token streams (NVARCHAR(MAX)
as PLP, INTN, FLTN, BITN, DATETIME2N, DATEN) or ERROR + DONE.

Statements it understands: ``CREATE DATABASE`` / ``IF DB_ID(..) IS NULL CREATE DATABASE``;
``CREATE OR ALTER VIEW [name] AS SELECT r.*, CAST(r.filepath(n) AS INT) AS [key] ... FROM
OPENROWSET(BULK 'https://<account>.dfs.core.windows.net/...', FORMAT = 'PARQUET') AS [r]``
(checked, then served from the local folder the URL maps to); views over other views;
``SELECT`` in T-SQL, translated with sqlglot tsql → duckdb and run on DuckDB so a test
compares real rows; ``sys.views`` listings. Anything else is error 102 (syntax).
"""

from __future__ import annotations

import datetime as dt
import re
import socketserver
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

PRELOGIN, LOGIN7, SQL_BATCH, RPC, REPLY, ATTENTION, TRANS_MGR = 0x12, 0x10, 1, 3, 4, 6, 14
TOK_COLMETADATA, TOK_ROW, TOK_DONE, TOK_ERROR, TOK_LOGINACK, TOK_ENVCHANGE = (
    0x81,
    0xD1,
    0xFD,
    0xAA,
    0xAD,
    0xE3,
)
DONE_FINAL, DONE_ERROR, DONE_COUNT, DONE_ATTN = 0x00, 0x02, 0x10, 0x20
COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])  # Latin1_General_CI_AS
VIEW_RE = re.compile(
    r"^\s*CREATE\s+OR\s+ALTER\s+VIEW\s+(?:\[dbo\]\.)?\[(?P<name>\w+)\]\s+AS\s+(?P<body>.*)$",
    re.I | re.S,
)
BULK_RE = re.compile(
    r"FROM\s+OPENROWSET\s*\(\s*BULK\s+'(?P<url>[^']+)'\s*,\s*FORMAT\s*=\s*'PARQUET'\s*\)"
    r"\s+AS\s+\[?r\]?\s*$",
    re.I | re.S,
)


def _bvarchar(s: str) -> bytes:
    data = s.encode("utf-16-le")
    return bytes([len(s)]) + data


def _usvarchar(s: str) -> bytes:
    return struct.pack("<H", len(s)) + s.encode("utf-16-le")


def _done(status: int = DONE_FINAL, rows: int = 0, cmd: int = 0xC1) -> bytes:
    if rows:
        status |= DONE_COUNT
    return bytes([TOK_DONE]) + struct.pack("<HHQ", status, cmd, rows)


def _error(number: int, message: str, klass: int = 16, state: int = 1) -> bytes:
    body = (
        struct.pack("<IBB", number, state, klass)
        + _usvarchar(message)
        + _bvarchar("synapse-stub")
        + _bvarchar("")
        + struct.pack("<I", 1)
    )
    return bytes([TOK_ERROR]) + struct.pack("<H", len(body)) + body


def deobfuscate(data: bytes) -> str:
    """LOGIN7 passwords: each byte had its nibbles swapped and was XORed with 0xA5."""
    out = bytearray()
    for b in data:
        b ^= 0xA5
        out.append(((b & 0x0F) << 4) | (b >> 4))
    return out.decode("utf-16-le")


class StubTds:
    """The server; ``port`` is where the client connects."""

    def __init__(
        self,
        user: str,
        password: str,
        storage: dict[str, Path],
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.tls_context: ssl.SSLContext | None = None
        if tls is not None:  # (certificate chain, key): TLS required, as on Synapse
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(str(tls[0]), str(tls[1]))
        self.tls_sessions = 0
        self._cache: tuple[str, duckdb.DuckDBPyConnection] | None = None
        self._cache_lock = threading.Lock()
        self.user = user
        self.password = password
        self.storage = storage  # https:// URL prefix → local folder
        self.databases: set[str] = {"master"}
        self.views: dict[tuple[str, str], dict[str, Any]] = {}
        self.batches: list[tuple[str, str]] = []  # (database, SQL text) of every batch
        self.logins: list[dict[str, Any]] = []
        self.bytes_processed = 0
        self.delay_secs = 0.0
        stub = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                stub._session(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- wire -------------------------------------------------------------------------
    @staticmethod
    def _recv_exact(sock: Any, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("client closed")
            buf += chunk
        return buf

    def _read_message(self, sock: Any) -> tuple[int, bytes]:
        data = b""
        while True:
            header = self._recv_exact(sock, 8)
            ptype, status, length = header[0], header[1], struct.unpack(">H", header[2:4])[0]
            if length < 8:
                raise ConnectionError("bad TDS packet length")
            data += self._recv_exact(sock, length - 8)
            if status & 0x01:  # EOM
                return ptype, data

    @staticmethod
    def _send(sock: Any, payload: bytes, size: int = 4096, ptype: int = REPLY) -> None:
        chunks = [payload[i : i + size - 8] for i in range(0, len(payload), size - 8)] or [b""]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            header = struct.pack(
                ">BBHHBB", ptype, 1 if last else 0, len(chunk) + 8, 51, (i + 1) % 256, 0
            )
            sock.sendall(header + chunk)

    def _tls_handshake(self, sock: Any) -> _TlsSocket:
        """MS-TDS 3.3.5.2: the TLS handshake travels inside PRELOGIN packets; after it,
        TLS records carry the TDS packets directly."""
        assert self.tls_context is not None
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.tls_context.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            ptype, data = self._read_message(sock)
            if ptype != PRELOGIN:
                raise ConnectionError("expected the TLS handshake in PRELOGIN packets")
            incoming.write(data)
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            out = outgoing.read()
            if out:
                self._send(sock, out, ptype=PRELOGIN)
            if done:
                self.tls_sessions += 1
                return _TlsSocket(sock, tls, incoming, outgoing)

    def _session(self, sock: Any) -> None:
        try:
            ptype, data = self._read_message(sock)
            if ptype != PRELOGIN:
                return
            client_enc = _prelogin_option(data, 0x01)
            if self.tls_context is not None and client_enc in (b"\x02", None):
                # the client cannot encrypt: ENCRYPT_REQ makes it give up, as Synapse does
                self._send(sock, self._prelogin_reply(3))
                return
            self._send(sock, self._prelogin_reply(1 if self.tls_context is not None else 2))
            if self.tls_context is not None:
                sock = self._tls_handshake(sock)
            ptype, data = self._read_message(sock)
            if ptype != LOGIN7:
                return
            db = self._login(sock, data)
            if db is None:
                return
            while True:
                ptype, data = self._read_message(sock)
                if ptype == SQL_BATCH:
                    self._send(sock, self._batch(db, data))
                elif ptype == ATTENTION:
                    self._send(sock, _done(DONE_ATTN, cmd=0))
                elif ptype == TRANS_MGR:
                    self._send(sock, _done(cmd=0))
                else:
                    self._send(
                        sock,
                        _error(102, f"the stub serves SQL batches only (packet {ptype})")
                        + _done(DONE_ERROR),
                    )
        except (ConnectionError, OSError):
            return

    @staticmethod
    def _prelogin_reply(encryption: int) -> bytes:
        opts = [
            (0x00, struct.pack(">IH", 0x0C000000, 0)),  # VERSION
            (0x01, bytes([encryption])),  # 1 ENCRYPT_ON, 2 ENCRYPT_NOT_SUP, 3 ENCRYPT_REQ
            (0x02, b"\x00"),  # INSTOPT
            (0x03, b""),  # THREADID
            (0x04, b"\x00"),  # MARS off
        ]
        offset = 5 * len(opts) + 1
        head, body = b"", b""
        for token, value in opts:
            head += struct.pack(">BHH", token, offset + len(body), len(value))
            body += value
        return head + b"\xff" + body

    def _login(self, sock: Any, data: bytes) -> str | None:
        def field(i: int) -> bytes:
            off, ln = struct.unpack_from("<HH", data, 36 + 4 * i)
            return data[off : off + 2 * ln]

        tds_version = struct.unpack_from("<I", data, 4)[0]
        user = field(1).decode("utf-16-le")
        password = deobfuscate(field(2))
        app = field(3).decode("utf-16-le")
        database = field(8).decode("utf-16-le") or "master"
        self.logins.append({"user": user, "database": database, "app": app, "tds": tds_version})
        if user != self.user or password != self.password:
            self._send(
                sock,
                _error(18456, f"Login failed for user '{user}'.", 14) + _done(DONE_ERROR, cmd=0),
            )
            return None
        if database not in self.databases:
            # SQL Server sends both messages: 4060, then 18456
            msg = f'Cannot open database "{database}" requested by the login. The login failed.'
            self._send(
                sock,
                _error(4060, msg, 11)
                + _error(18456, f"Login failed for user '{user}'.", 14)
                + _done(DONE_ERROR, cmd=0),
            )
            return None
        prog = "Microsoft SQL Server"
        ack_body = (
            b"\x01" + struct.pack(">I", 0x74000004) + _bvarchar(prog) + bytes([12, 0, 0x0F, 0xA0])
        )
        env_db = b"\x01" + _bvarchar(database) + _bvarchar("master")
        env_size = b"\x04" + _bvarchar("4096") + _bvarchar("4096")
        out = (
            bytes([TOK_ENVCHANGE])
            + struct.pack("<H", len(env_db))
            + env_db
            + bytes([TOK_ENVCHANGE])
            + struct.pack("<H", len(env_size))
            + env_size
            + bytes([TOK_LOGINACK])
            + struct.pack("<H", len(ack_body))
            + ack_body
            + _done(cmd=0)
        )
        self._send(sock, out)
        return database

    # -- statements -------------------------------------------------------------------
    def _batch(self, db: str, data: bytes) -> bytes:
        headers_len = struct.unpack_from("<I", data, 0)[0]  # ALL_HEADERS (TDS 7.2+)
        sql = data[headers_len:].decode("utf-16-le")
        self.batches.append((db, sql))
        if self.delay_secs:
            time.sleep(self.delay_secs)
        try:
            return self._statement(db, sql)
        except _SqlError as e:
            return _error(e.number, e.message) + _done(DONE_ERROR)
        except Exception as e:  # a stub bug: answer with an error the test will show
            return _error(50000, f"stub failure: {e!r}") + _done(DONE_ERROR)

    def _statement(self, db: str, sql: str) -> bytes:
        text = sql.strip().rstrip(";")
        m = re.fullmatch(
            r"(?:IF\s+DB_ID\(N?'(\w+)'\)\s+IS\s+NULL\s+)?CREATE\s+DATABASE\s+\[(\w+)\]",
            text,
            re.I,
        )
        if m:
            if db != "master":
                raise _SqlError(12703, "CREATE DATABASE must run in master")
            if m.group(2) in self.databases and not m.group(1):
                raise _SqlError(1801, f"Database '{m.group(2)}' already exists.")
            self.databases.add(m.group(2))
            return _done(cmd=0x10)
        m = VIEW_RE.match(text)
        if m:
            if db == "master":
                raise _SqlError(15868, "CREATE VIEW is not supported in master: use a database")
            self.views[(db, m.group("name"))] = self._check_view(db, m.group("body"))
            return _done(cmd=0x10)
        if re.match(r"^\s*(SELECT|WITH)\b", text, re.I):
            return self._select(db, text)
        raise _SqlError(102, f"Incorrect syntax near '{text[:20]}'.")

    def _check_view(self, db: str, body: str) -> dict[str, Any]:
        bulk = BULK_RE.search(body)
        if bulk:
            url = bulk.group("url")
            if not url.startswith("https://") or ".dfs.core.windows.net/" not in url:
                raise _SqlError(13807, f"Content of directory on path '{url}' cannot be listed.")
            if not url.endswith("/year=*/month=*/day=*/hour=*/*.parquet"):
                raise _SqlError(16501, "the lake's views read year=*/month=*/day=*/hour=* folders")
            for i, key in enumerate(("year", "month", "day", "hour"), 1):
                if not re.search(
                    rf"CAST\(\[?r\]?\.filepath\({i}\)\s+AS\s+INT\)\s+AS\s+\[{key}\]", body, re.I
                ):
                    raise _SqlError(16502, f"column [{key}] must be CAST(r.filepath({i}) AS INT)")
            return {"url": url, "folder": self._local(url.split("/year=*", 1)[0])}
        try:
            sqlglot.parse_one(body, read="tsql")
        except sqlglot.errors.ParseError as e:
            raise _SqlError(102, f"Incorrect syntax: {e}") from None
        return {"sql": body}

    def _local(self, url: str) -> Path:
        for prefix, folder in self.storage.items():
            if url.startswith(prefix.rstrip("/") + "/") or url == prefix:
                return folder / url[len(prefix) :].lstrip("/")
        raise _SqlError(13807, f"Content of directory on path '{url}' cannot be listed.")

    def _connect(self, db: str) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor with one view per Synapse view (cached while nothing changes)."""
        listing_of = {
            name: sorted(str(f) for f in Path(v["folder"]).rglob("*.parquet"))
            for (d, name), v in self.views.items()
            if d == db and "folder" in v
        }
        for files in listing_of.values():
            self.bytes_processed += sum(Path(f).stat().st_size for f in files)
        key = repr((db, sorted((k, sorted(v.items())) for k, v in self.views.items()), listing_of))
        with self._cache_lock:
            if self._cache and self._cache[0] == key:
                return self._cache[1].cursor()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        later = []
        for (d, name), v in self.views.items():
            if d != db:
                continue
            if "folder" in v:
                files = listing_of[name]
                if not files:
                    continue
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                con.execute(
                    f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listing}], '
                    "hive_partitioning = true, union_by_name = true, hive_types = {'year': INTEGER, 'month': INTEGER, 'day': INTEGER, 'hour': INTEGER})"
                )
            else:
                later.append((name, v["sql"]))
        for name, sql in later:
            con.execute(f'CREATE VIEW "{name}" AS {self._to_duckdb(sql)}')
        with self._cache_lock:
            self._cache = (key, con)
        return con.cursor()

    def _to_duckdb(self, sql: str) -> str:
        try:
            tree = sqlglot.parse_one(sql, read="tsql")
        except sqlglot.errors.ParseError as e:
            raise _SqlError(102, f"Incorrect syntax: {e}") from None
        for node in tree.find_all(exp.Group):
            if any(isinstance(g, exp.Literal) for g in node.expressions):
                raise _SqlError(
                    164,
                    "Each GROUP BY expression must contain at least one column that is not "
                    "an outer reference.",
                )
        for t in tree.find_all(exp.Table):
            t.set("db", None)
        # OPENJSON(src, path) AS x: one row per array element, ``x.value`` the element's
        # text (scalars unquoted, objects as JSON), as SQL Server returns it
        for table in list(tree.find_all(exp.Table)):
            oj = table.this
            if not isinstance(oj, exp.OpenJSON):
                continue
            src = oj.this.sql(dialect="duckdb")
            path = oj.args["path"].sql(dialect="duckdb") if oj.args.get("path") else "'$'"
            sub = sqlglot.parse_one(
                "SELECT CASE WHEN json_type(j) = 'VARCHAR' THEN j ->> '$' "
                "ELSE CAST(j AS VARCHAR) END AS value FROM (SELECT unnest(CAST("
                f"json_extract(CAST({src} AS JSON), {path}) AS JSON[])) AS j)",
                read="duckdb",
            )
            table.replace(exp.Subquery(this=sub, alias=table.args.get("alias")))
        # PERCENTILE_CONT / APPROX_PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x): DuckDB's
        # quantile_cont(x, p) (exact; Synapse's APPROX_ variant is within its error bound)
        for wg in list(tree.find_all(exp.WithinGroup)):
            fn = wg.this
            name = fn.name.upper() if isinstance(fn, exp.Anonymous) else fn.key.upper()
            if name in ("APPROX_PERCENTILE_CONT", "PERCENTILE_CONT", "PERCENTILECONT"):
                q = fn.expressions[0] if isinstance(fn, exp.Anonymous) else fn.this
                x = wg.expression.expressions[0].this
                wg.replace(exp.Anonymous(this="quantile_cont", expressions=[x.copy(), q.copy()]))
        # T-SQL FLOAT is FLOAT(53), a double; sqlglot maps it to DuckDB's 4-byte REAL
        for dtype in tree.find_all(exp.DataType):
            if dtype.this == exp.DataType.Type.FLOAT:
                dtype.set("this", exp.DataType.Type.DOUBLE)
        return tree.sql(dialect="duckdb")

    def _select(self, db: str, sql: str) -> bytes:
        m = re.search(r"FROM\s+sys\.databases\s+WHERE\s+name\s*=\s*N?'(\w+)'", sql, re.I)
        if m:
            return self._result(
                ["name"], ["VARCHAR"], [[m.group(1)]] if m.group(1) in self.databases else []
            )
        if "sys.views" in sql.lower():
            rows = [[name] for (d, name) in sorted(self.views) if d == db]
            return self._result(["name"], ["VARCHAR"], rows)
        con = duckdb.connect()
        try:
            con.close()
            translated = self._to_duckdb(sql)  # also refuses GROUP BY ordinals, as T-SQL does
            con = self._connect(db)
            cur = con.execute(translated)
            cols = [d[0] for d in cur.description]
            types = [str(d[1]).upper() for d in cur.description]
            return self._result(cols, types, cur.fetchall())
        except duckdb.CatalogException as e:
            m = re.search(r"Table with name (\w+) does not exist", str(e))
            if m:
                raise _SqlError(208, f"Invalid object name '{m.group(1)}'.") from None
            f = re.search(r"Function with name (\w+) does not exist", str(e))
            if f:
                raise _SqlError(
                    195, f"'{f.group(1)}' is not a recognized built-in function name."
                ) from None
            raise _SqlError(8114, str(e).splitlines()[0][:200]) from None
        except duckdb.Error as e:
            raise _SqlError(8114, str(e).splitlines()[0][:200]) from None
        finally:
            con.close()

    def _result(self, cols: list[str], types: list[str], rows: list[Any]) -> bytes:
        meta = bytearray([TOK_COLMETADATA]) + struct.pack("<H", len(cols))
        kinds = []
        for name, t in zip(cols, types, strict=True):
            meta += struct.pack("<IH", 0, 0x0009)  # UserType, Flags: nullable | updatable-unknown
            if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT"):
                meta += bytes([0x26, 8])
                kinds.append("int")
            elif t in ("DOUBLE", "FLOAT") or t.startswith("DECIMAL"):
                meta += bytes([0x6D, 8])
                kinds.append("float")
            elif t == "BOOLEAN":
                meta += bytes([0x68, 1])
                kinds.append("bit")
            elif t.startswith("TIMESTAMP"):
                meta += bytes([0x2A, 7])
                kinds.append("datetime2")
            elif t == "DATE":
                meta += bytes([0x28])
                kinds.append("date")
            else:
                meta += bytes([0xE7]) + struct.pack("<H", 0xFFFF) + COLLATION
                kinds.append("nvarchar")
            meta += _bvarchar(name)
        out = bytearray(meta)
        for row in rows:
            out.append(TOK_ROW)
            for v, kind in zip(row, kinds, strict=True):
                out += _value(v, kind)
        out += _done(rows=len(rows))
        return bytes(out)


def _value(v: Any, kind: str) -> bytes:
    if kind == "nvarchar":
        if v is None:
            return b"\xff" * 8  # PLP NULL
        data = (v if isinstance(v, str) else str(v)).encode("utf-16-le")
        return struct.pack("<Q", len(data)) + struct.pack("<I", len(data)) + data + b"\x00" * 4
    if v is None:
        return b"\x00"
    if kind == "int":
        return b"\x08" + struct.pack("<q", int(v))
    if kind == "float":
        return b"\x08" + struct.pack("<d", float(v))
    if kind == "bit":
        return b"\x01" + bytes([1 if v else 0])
    if kind == "datetime2":
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        midnight = v.replace(hour=0, minute=0, second=0, microsecond=0)
        ticks = int((v - midnight) / dt.timedelta(microseconds=1)) * 10  # 100 ns units
        days = (v.date() - dt.date(1, 1, 1)).days
        return b"\x08" + ticks.to_bytes(5, "little") + days.to_bytes(3, "little")
    if kind == "date":
        return b"\x03" + (v - dt.date(1, 1, 1)).days.to_bytes(3, "little")
    raise ValueError(kind)


class _SqlError(Exception):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number, self.message = number, message


def _prelogin_option(data: bytes, token: int) -> bytes | None:
    """The value of one PRELOGIN option (offsets are from the start of the message)."""
    i = 0
    while i < len(data) and data[i] != 0xFF:
        t, off, ln = struct.unpack_from(">BHH", data, i)
        if t == token:
            return data[off : off + ln]
        i += 5
    return None


class _TlsSocket:
    """recv / sendall over a server-side TLS session kept in memory BIOs."""

    def __init__(
        self, raw: Any, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
    ) -> None:
        self.raw, self.tls, self.incoming, self.outgoing = raw, tls, incoming, outgoing

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self.raw.sendall(self.outgoing.read())

    def recv(self, n: int) -> bytes:
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                chunk = self.raw.recv(65536)
                if not chunk:
                    return b""
                self.incoming.write(chunk)
            except ssl.SSLZeroReturnError:
                return b""
