"""Google AI (Gemini API) through the official ``google-genai`` SDK (extra ``google``).

Structured output: ``response_mime_type="application/json"`` with
``response_json_schema`` (https://ai.google.dev/gemini-api/docs/structured-output).
Key: ``GEMINI_API_KEY`` (sent as ``x-goog-api-key``).
"""

from __future__ import annotations

from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from mantissa.errors import LLMError, LLMTimeout
from mantissa.llm.base import LLMProvider, classify_status, parse_json_object, strip_schema


class GoogleAIProvider(LLMProvider):
    name = "google_ai"
    default_model = "gemini-2.5-flash"
    key_env = "GEMINI_API_KEY"

    def _http_options(self) -> types.HttpOptions:
        opts: dict[str, Any] = {"timeout": int(self.config.timeout_secs * 1000)}
        if self.config.base_url:
            opts["base_url"] = self.config.base_url
        opts["retry_options"] = types.HttpRetryOptions(attempts=self.config.max_retries + 1)
        return types.HttpOptions(**opts)

    def _client(self) -> genai.Client:
        return genai.Client(api_key=self.api_key(), http_options=self._http_options())

    def _generate(self, prompt: str, system: str | None, **cfg: Any) -> Any:
        config = types.GenerateContentConfig(
            system_instruction=system,
            temperature=self.config.temperature,
            max_output_tokens=self.config.max_tokens,
            **cfg,
        )
        # keep the client referenced for the call: a dropped genai.Client closes its
        # HTTP connection pool when garbage-collected
        client = self._client()
        try:
            return client.models.generate_content(model=self.model, contents=prompt, config=config)
        except genai_errors.APIError as exc:
            raise classify_status(self.name, exc.code, str(exc.message or exc.status)) from None
        except Exception as exc:
            if "timeout" in type(exc).__name__.lower():
                raise LLMTimeout(
                    f"{self.name}: no answer within {self.config.timeout_secs:g}s"
                ) from None
            raise LLMError(f"{self.name}: {type(exc).__name__}") from None

    def generate(self, prompt: str, system: str | None = None) -> str:
        return self._generate(prompt, system).text or ""

    def generate_with_schema(
        self, prompt: str, schema: dict[str, Any], name: str = "plan", system: str | None = None
    ) -> dict[str, Any]:
        resp = self._generate(
            prompt,
            system,
            response_mime_type="application/json",
            response_json_schema=strip_schema(schema),
        )
        return parse_json_object(resp.text or "")
