"""The error tree of Mantissa Log.

    MantissaError
    ├── ConfigError            bad mantissa.yaml / flags (carries file:line when known)
    ├── SourceError            unknown source, source cannot be detected
    ├── IngestError            an input could not be read at all
    ├── QueryError             a query failed in the engine
    │   ├── QueryRejected      the SQL guard refused the statement
    │   ├── QueryTimeout       the statement ran past its timeout
    │   └── BudgetExceeded     the cost estimate is over budget
    ├── StorageError           the lake's object store failed (bucket, permission, region)
    ├── StateError             the state store failed
    ├── LLMError               an LLM provider failed (ask tier); never carries the key
    │   ├── LLMRateLimited     the provider said 429 / throttled (retryable)
    │   └── LLMTimeout         the provider did not answer in time (retryable)
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


class StorageError(MantissaError):
    """The lake's object store refused or failed (bucket, permissions, credentials, region)."""

    code = "storage_error"
    http_status = 502


class StateError(MantissaError):
    code = "state_error"
    http_status = 500


class NotFound(MantissaError):
    code = "not_found"
    http_status = 404


class Unauthorized(MantissaError):
    """No credentials, or credentials that are unknown, revoked or expired (API)."""

    code = "unauthorized"
    http_status = 401


class Forbidden(MantissaError):
    """Valid credentials whose role does not allow the call (API)."""

    code = "forbidden"
    http_status = 403


class PayloadTooLarge(MantissaError):
    """A request body over the configured limit (API)."""

    code = "payload_too_large"
    http_status = 413


class Unavailable(MantissaError):
    """A feature or dependency that is not available right now (API)."""

    code = "unavailable"
    http_status = 503


class DeliveryError(MantissaError):
    """An alert could not be delivered to a destination (alerts outbox, SOAR notifications)."""

    code = "delivery_error"
    http_status = 502


class RetryableDeliveryError(DeliveryError):
    """Worth retrying later: 429, 5xx, timeouts, connection refused.

    ``retry_after_secs`` carries the vendor's ``Retry-After`` when it sent one."""

    code = "delivery_retryable"

    def __init__(
        self, message: str, *, retry_after_secs: float | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_secs = retry_after_secs


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: 4xx other than 408/429, a rejected payload, bad credentials."""

    code = "delivery_permanent"


class LLMError(MantissaError):
    code = "llm_error"
    http_status = 502


class LLMRateLimited(LLMError):
    code = "llm_rate_limited"
    http_status = 429


class LLMTimeout(LLMError):
    code = "llm_timeout"
    http_status = 504


class InputError(MantissaError):
    """A collector input failed (vendor API, malformed page, config); never carries secrets."""

    code = "input_error"
    http_status = 502


class InputAuthError(InputError):
    """The vendor refused our credentials: the input stops until its config is fixed."""

    code = "input_auth_failed"
    http_status = 502
