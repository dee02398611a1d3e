"""OpenAI through the official ``openai`` SDK (extra ``openai``).

Structured output uses Chat Completions ``response_format`` of type ``json_schema``
(https://platform.openai.com/docs/guides/structured-outputs). Key: ``OPENAI_API_KEY``.
"""

from __future__ import annotations

from typing import Any

import openai as sdk

from mantissa.errors import LLMError, LLMRateLimited, LLMTimeout
from mantissa.llm.base import LLMProvider, classify_status, parse_json_object, strip_schema


class OpenAIProvider(LLMProvider):
    name = "openai"
    default_model = "gpt-4o-mini"
    key_env = "OPENAI_API_KEY"

    def _client(self) -> Any:
        return sdk.OpenAI(
            api_key=self.api_key(),
            base_url=self.config.base_url,
            timeout=self.config.timeout_secs,
            max_retries=self.config.max_retries,
        )

    def _create(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        try:
            return self._client().chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=self.config.max_tokens,
                temperature=self.config.temperature,
                **kwargs,
            )
        except sdk.RateLimitError as exc:
            raise LLMRateLimited(f"{self.name}: rate limited ({exc.status_code})") from None
        except sdk.APITimeoutError:
            raise LLMTimeout(
                f"{self.name}: no answer within {self.config.timeout_secs:g}s"
            ) from None
        except sdk.APIStatusError as exc:
            raise classify_status(self.name, exc.status_code, _message(exc)) from None
        except sdk.APIConnectionError as exc:
            raise LLMError(f"{self.name}: cannot connect: {type(exc).__name__}") from None

    @staticmethod
    def _messages(prompt: str, system: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if system:
            out.append({"role": "system", "content": system})
        out.append({"role": "user", "content": prompt})
        return out

    def generate(self, prompt: str, system: str | None = None) -> str:
        resp = self._create(self._messages(prompt, system))
        return resp.choices[0].message.content or ""

    def generate_with_schema(
        self, prompt: str, schema: dict[str, Any], name: str = "plan", system: str | None = None
    ) -> dict[str, Any]:
        resp = self._create(
            self._messages(prompt, system),
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "schema": strip_schema(schema), "strict": False},
            },
        )
        if not resp.choices:
            raise LLMError(f"{self.name}: the reply had no choices")
        return parse_json_object(resp.choices[0].message.content or "")


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return f"HTTP {getattr(exc, 'status_code', '?')}"
