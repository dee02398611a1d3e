"""The error tree of Mantissa Log.

    MantissaError
    ├── ConfigError            bad mantissa.yaml / flags (carries file:line when known)
    ├── SourceError            unknown source, source cannot be detected
    ├── IngestError            an input could not be read at all
    ├── QueryError             a query failed in the engine
    │   ├── QueryRejected      the SQL guard refused the statement
    │   ├── QueryTimeout       the statement ran past its timeout
    │   └── BudgetExceeded     the cost estimate is over budget
    ├── StateError             the state store failed
    └── NotFound               a named object (alert, rule, table ...) does not exist

Every error has a stable ``code`` (used by the API as ``error.code``) and an
``http_status``. Never branch on message text: branch on the class or ``code``.
"""

from __future__ import annotations


class MantissaError(Exception):
    """Root of all errors raised on purpose by Mantissa Log."""

    code = "mantissa_error"
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class ConfigError(MantissaError):
    code = "config_error"
    http_status = 400


class SourceError(MantissaError):
    code = "source_error"
    http_status = 400


class IngestError(MantissaError):
    code = "ingest_error"
    http_status = 400


class QueryError(MantissaError):
    code = "query_error"
    http_status = 400


class QueryRejected(QueryError):
    code = "query_rejected"
    http_status = 400


class QueryTimeout(QueryError):
    code = "query_timeout"
    http_status = 408


class BudgetExceeded(QueryError):
    code = "budget_exceeded"
    http_status = 402


class StateError(MantissaError):
    code = "state_error"
    http_status = 500


class NotFound(MantissaError):
    code = "not_found"
    http_status = 404
