"""The :class:`LLMProvider` interface, its config section and the prompt cache.

A provider is one module under ``mantissa/llm/`` (``anthropic``, ``openai``,
``azure_openai``, ``bedrock``, ``vertex``, ``google_ai``, ``fake``): defining a
subclass with ``name`` registers it. Each implements :meth:`LLMProvider.generate`
(free text) and :meth:`LLMProvider.generate_with_schema` (JSON constrained to a JSON
Schema through the vendor's tool use / response format). Keys come from environment
variables only; errors never carry them.

Config (``mantissa.yaml``)::

    llm:
      provider: anthropic          # anthropic | openai | azure_openai | bedrock | vertex | google_ai | fake
      model: claude-sonnet-4-5
      max_tokens: 1024
      temperature: 0.0
      cache_enabled: true
      cache_ttl_seconds: 86400
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import orjson
from pydantic import Field

from mantissa.config import Section
from mantissa.errors import ConfigError, LLMError, LLMRateLimited, LLMTimeout

_PROVIDERS: dict[str, type[LLMProvider]] = {}
PROVIDER_MODULES = ("anthropic", "openai", "azure_openai", "bedrock", "vertex", "google_ai", "fake")


class LLMConfig(Section):
    """The ``llm`` section of ``mantissa.yaml``."""

    provider: str | None = None
    model: str | None = None
    max_tokens: int = Field(default=1024, ge=1, le=64_000)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    cache_enabled: bool = True
    cache_ttl_seconds: int = Field(default=86_400, ge=0)
    #: Name of the environment variable holding the key (default per provider).
    api_key_env: str | None = None
    #: Endpoint override (proxies, gateways, local stubs).
    base_url: str | None = None
    timeout_secs: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    #: Azure OpenAI: API version and deployment (the model name in the URL).
    api_version: str | None = None
    deployment: str | None = None
    #: Bedrock region; Vertex project and location.
    region: str | None = None
    project: str | None = None
    location: str | None = None
    #: LLM repair rounds after an engine error (the guard still checks every plan).
    repair_rounds: int = Field(default=2, ge=0, le=2)


class LLMProvider(ABC):
    """A model behind one vendor API."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    key_env: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            _PROVIDERS[cls.name] = cls

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.model = config.model or self.default_model

    def api_key(self, required: bool = True) -> str | None:
        var = self.config.api_key_env or self.key_env
        key = os.environ.get(var) if var else None
        if required and not key:
            raise ConfigError(
                f"llm provider {self.name} needs an API key",
                hint=f"export {var}" if var else "set llm.api_key_env",
            )
        return key

    @property
    def label(self) -> str:
        """How the answer names this tier: ``llm:<provider>/<model>``."""
        return f"llm:{self.name}/{self.model}"

    @abstractmethod
    def generate(self, prompt: str, system: str | None = None) -> str:
        """Free text for ``prompt``."""

    @abstractmethod
    def generate_with_schema(
        self, prompt: str, schema: dict[str, Any], name: str = "plan", system: str | None = None
    ) -> dict[str, Any]:
        """A JSON object that conforms to ``schema`` (tool use / structured output)."""


def provider_types() -> dict[str, type[LLMProvider]]:
    """Every provider whose SDK is importable (the fake one always)."""
    for mod in PROVIDER_MODULES:
        try:
            importlib.import_module(f"mantissa.llm.{mod}")
        except ImportError:
            continue
    return dict(_PROVIDERS)


def get_provider(config: LLMConfig) -> LLMProvider:
    """The provider named by ``config.provider`` (its SDK extra must be installed)."""
    name = (config.provider or "").strip()
    if name not in PROVIDER_MODULES:
        raise ConfigError(
            f"unknown llm provider {name!r}", hint="one of: " + ", ".join(PROVIDER_MODULES)
        )
    try:
        importlib.import_module(f"mantissa.llm.{name}")
    except ImportError as exc:
        extra = {
            "azure_openai": "openai",
            "vertex": "google",
            "google_ai": "google",
            "bedrock": "aws",
        }
        raise ConfigError(
            f"llm provider {name} needs its SDK: {exc.name}",
            hint=f"pip install 'mantissa-log[{extra.get(name, name)}]'",
        ) from None
    return _PROVIDERS[name](config)


def strip_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``s and drop keywords some vendors reject (``title``, ``default``)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].split("/")[-1]])
            return {k: walk(v) for k, v in node.items() if k not in ("$defs", "title", "default")}
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    return walk(schema)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's text (tolerates code fences around it)."""
    t = text.strip()
    if t.startswith("```"):
        t = t.strip("`")
        t = t.split("\n", 1)[1] if "\n" in t else t
    start, end = t.find("{"), t.rfind("}")
    if start < 0 or end < start:
        raise LLMError("the model did not return a JSON object")
    try:
        obj = orjson.loads(t[start : end + 1])
    except orjson.JSONDecodeError as exc:
        raise LLMError(f"the model returned invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise LLMError("the model did not return a JSON object")
    return obj


def classify_status(provider: str, status: int | None, message: str) -> LLMError:
    """An HTTP failure as the right error (rate limit, timeout, other); no secrets kept."""
    text = f"{provider}: {message}"[:300]
    if status == 429:
        return LLMRateLimited(text, hint="the provider is rate limiting; retry later")
    if status in (408, 504):
        return LLMTimeout(text)
    if status in (401, 403):
        return LLMError(text, hint="check the API key / credentials")
    return LLMError(text)


class PromptCache:
    """Responses keyed on provider, model, prompt and schema; expires after a TTL."""

    NAMESPACE = "llm.prompts"

    def __init__(self, state: Any, ttl_seconds: int) -> None:
        self.state = state
        self.ttl = ttl_seconds

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def get(self, key: str) -> Any:
        doc = self.state.get(self.NAMESPACE, key)
        if not doc or doc.get("expires", 0) < time.time():
            return None
        return doc.get("value")

    def put(self, key: str, value: Any) -> None:
        self.state.put(self.NAMESPACE, key, {"value": value, "expires": time.time() + self.ttl})
