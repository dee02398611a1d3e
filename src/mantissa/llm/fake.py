"""A fake provider shipped for tests and offline demos: canned, deterministic answers.

Configure replies with ``FakeProvider.replies`` (a list consumed in order, or a
callable ``(prompt, schema) -> dict``); every call is recorded in ``calls``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from mantissa.errors import LLMError
from mantissa.llm.base import LLMProvider

Reply = dict[str, Any] | str | Exception


class FakeProvider(LLMProvider):
    name = "fake"
    default_model = "fake-1"
    key_env = None

    replies: ClassVar[list[Reply] | Callable[[str, dict[str, Any] | None], Reply]] = []
    calls: ClassVar[list[dict[str, Any]]] = []

    def _next(self, prompt: str, schema: dict[str, Any] | None) -> Reply:
        type(self).calls.append({"prompt": prompt, "schema": schema, "model": self.model})
        src = type(self).replies
        if callable(src):
            reply = src(prompt, schema)
        elif src:
            reply = src.pop(0)
        else:
            raise LLMError("fake provider: no reply configured")
        if isinstance(reply, Exception):
            raise reply
        return reply

    def generate(self, prompt: str, system: str | None = None) -> str:
        reply = self._next(prompt, None)
        return reply if isinstance(reply, str) else str(reply)

    def generate_with_schema(
        self, prompt: str, schema: dict[str, Any], name: str = "plan", system: str | None = None
    ) -> dict[str, Any]:
        reply = self._next(prompt, schema)
        if not isinstance(reply, dict):
            raise LLMError("fake provider: reply is not a JSON object")
        return reply
