"""The SQL guard: every query — typed, generated or asked in English — passes here first.

It parses with sqlglot and allows exactly one read-only query (SELECT / UNION / WITH)
over known tables, with no table functions, no file or network functions, no DDL, DML,
``COPY``, ``ATTACH``, ``INSTALL``, ``PRAGMA`` or ``SET``. The engine session is locked
down as a second line of defence (see ``engines/duckdb.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from mantissa.errors import QueryRejected

# Functions that read files, reach the network, the environment or the engine's settings.
FORBIDDEN_FUNCTIONS = {
    "read_text",
    "read_blob",
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "read_json",
    "read_json_auto",
    "read_json_objects",
    "read_ndjson",
    "read_ndjson_auto",
    "read_ndjson_objects",
    "glob",
    "getenv",
    "current_setting",
    "duckdb_settings",
    "duckdb_extensions",
    "duckdb_secrets",
    "query",
    "query_table",
    "sniff_csv",
    "iceberg_scan",
    "delta_scan",
    "sqlite_scan",
    "postgres_scan",
    "mysql_scan",
    "read_xlsx",
    "load_aws_credentials",
    "parquet_metadata",
    "parquet_schema",
    "parquet_file_metadata",
    "parquet_kv_metadata",
    "duckdb_databases",
    "pragma_database_list",
    "system",
    "shell",
    "copy",
    "export",
    "pg_read_file",
    "pg_ls_dir",
    "lo_import",
    "dblink",
    "openrowset",
    "opendatasource",
}

_WRITE_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "AlterTable",
        "Copy",
        "Command",
        "Set",
        "Pragma",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
        "Attach",
        "Detach",
        "Install",
        "Load",
        "Grant",
        "Revoke",
        "Truncate",
        "TruncateTable",
        "Export",
        "LoadData",
        "Analyze",
        "Describe",
        "Summarize",
        "Refresh",
        "Cache",
        "Uncache",
        "Into",
    )
    if hasattr(exp, name)
)


@dataclass
class GuardedQuery:
    """A query the guard accepted: its AST and the tables it reads."""

    expression: exp.Expression
    tables: list[str]

    def sql(self, dialect: str = "duckdb") -> str:
        return self.expression.sql(dialect=dialect)


def guard(
    sql: str, allowed_tables: Iterable[str], dialect: str = "duckdb", max_limit: int | None = None
) -> GuardedQuery:
    """Accept one read-only SELECT over ``allowed_tables`` or raise :class:`QueryRejected`."""
    allowed = {t.lower() for t in allowed_tables}
    if not sql or not sql.strip():
        raise QueryRejected("empty query")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        errs = exc.errors[0] if exc.errors else {}
        where = f" at line {errs.get('line')}, column {errs.get('col')}" if errs else ""
        raise QueryRejected(f"could not parse SQL{where}: {errs.get('description', exc)}") from None
    if len(statements) != 1:
        raise QueryRejected(
            f"exactly one statement is allowed, got {len(statements)}",
            hint="remove the extra ';'-separated statements",
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query) and not isinstance(tree, _WRITE_NODES):
        raise QueryRejected(
            f"could not parse SQL: expected a SELECT query, got {sql.strip()[:60]!r}"
        )
    if not isinstance(tree, exp.Query):
        raise QueryRejected(
            f"only read-only queries are allowed, not {tree.key.upper()}",
            hint="queries run read-only; write with `mantissa ingest`",
        )
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES):
            raise QueryRejected(f"{node.key.upper()} is not allowed in a query")
        if isinstance(node, exp.Func):
            name = (node.sql_name() if not isinstance(node, exp.Anonymous) else node.name).lower()
            if name in FORBIDDEN_FUNCTIONS or name.startswith(("read_", "pg_", "duckdb_")):
                raise QueryRejected(f"function {name}() is not allowed in a query")
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            # a table function such as read_text('/etc/passwd') in FROM
            raise QueryRejected(f"table functions are not allowed: {node.this.sql()}")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    tables: list[str] = []
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog"):
            raise QueryRejected(f"qualified table names are not allowed: {table.sql()}")
        name = table.name.lower()
        if name in ctes:
            continue
        if name not in allowed:
            raise QueryRejected(
                f"unknown table {table.name!r}",
                hint="known tables: " + ", ".join(sorted(allowed)),
            )
        if name not in tables:
            tables.append(name)
    if max_limit is not None:
        limit = tree.args.get("limit")
        if isinstance(limit, exp.Limit):
            value = limit.expression
            if isinstance(value, exp.Literal) and value.is_int and int(value.this) > max_limit:
                limit.set("expression", exp.Literal.number(max_limit))
    return GuardedQuery(tree, tables)
