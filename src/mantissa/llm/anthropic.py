"""Anthropic (Claude) through the official ``anthropic`` SDK (extra ``anthropic``).

Structured output uses tool use: one tool whose ``input_schema`` is the plan schema and
``tool_choice`` forcing it, so the reply is a ``tool_use`` block whose ``input`` is the
JSON object (https://docs.anthropic.com/en/docs/build-with-claude/tool-use).
Key: ``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

import inspect
from typing import Any

import anthropic as sdk

from mantissa.errors import LLMError, LLMRateLimited, LLMTimeout
from mantissa.llm.base import LLMProvider, classify_status, strip_schema


class AnthropicProvider(LLMProvider):
    name = "anthropic"
    default_model = "claude-sonnet-4-6"
    key_env = "ANTHROPIC_API_KEY"

    def _client(self) -> sdk.Anthropic:
        return sdk.Anthropic(
            api_key=self.api_key(),
            base_url=self.config.base_url,
            timeout=self.config.timeout_secs,
            max_retries=self.config.max_retries,
        )

    def _create(self, **kwargs: Any) -> Any:
        create = self._client().messages.create
        # SDK 2.x dropped the typed ``temperature`` argument; the Messages API still
        # takes it in the body (https://docs.anthropic.com/en/api/messages)
        if "temperature" in inspect.signature(create).parameters:
            kwargs["temperature"] = self.config.temperature
        else:
            kwargs["extra_body"] = {"temperature": self.config.temperature}
        try:
            return create(model=self.model, max_tokens=self.config.max_tokens, **kwargs)
        except sdk.RateLimitError as exc:
            raise LLMRateLimited(f"anthropic: rate limited ({exc.status_code})") from None
        except sdk.APITimeoutError:
            raise LLMTimeout(f"anthropic: no answer within {self.config.timeout_secs:g}s") from None
        except sdk.APIStatusError as exc:
            raise classify_status("anthropic", exc.status_code, _message(exc)) from None
        except sdk.APIConnectionError as exc:
            raise LLMError(f"anthropic: cannot connect: {type(exc).__name__}") from None

    def generate(self, prompt: str, system: str | None = None) -> str:
        extra: dict[str, Any] = {"system": system} if system else {}
        msg = self._create(messages=[{"role": "user", "content": prompt}], **extra)
        return "".join(b.text for b in msg.content if getattr(b, "type", "") == "text")

    def generate_with_schema(
        self, prompt: str, schema: dict[str, Any], name: str = "plan", system: str | None = None
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {"system": system} if system else {}
        msg = self._create(
            messages=[{"role": "user", "content": prompt}],
            tools=[
                {
                    "name": name,
                    "description": "Return the query plan.",
                    "input_schema": strip_schema(schema),
                }
            ],
            tool_choice={"type": "tool", "name": name},
            **extra,
        )
        for block in msg.content:
            if getattr(block, "type", "") == "tool_use" and block.name == name:
                return dict(block.input)
        raise LLMError("anthropic: the reply carried no tool_use block")


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return f"HTTP {getattr(exc, 'status_code', '?')}"
