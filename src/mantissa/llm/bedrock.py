"""AWS Bedrock through boto3's ``bedrock-runtime`` Converse API (extra ``aws``).

Structured output uses Converse tool use: ``toolConfig`` with one tool whose
``inputSchema.json`` is the plan schema and ``toolChoice`` forcing it
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).
Credentials come from the standard AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from mantissa.errors import LLMError, LLMRateLimited, LLMTimeout
from mantissa.llm.base import LLMProvider, classify_status, strip_schema

_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}


class BedrockProvider(LLMProvider):
    name = "bedrock"
    default_model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    key_env = None

    def _client(self) -> Any:
        return boto3.client(
            "bedrock-runtime",
            region_name=self.config.region or "us-east-1",
            endpoint_url=self.config.base_url,
            config=BotoConfig(
                connect_timeout=self.config.timeout_secs,
                read_timeout=self.config.timeout_secs,
                retries={"max_attempts": self.config.max_retries + 1, "mode": "standard"},
            ),
        )

    def _converse(self, prompt: str, system: str | None, **kwargs: Any) -> dict[str, Any]:
        req: dict[str, Any] = {
            "modelId": self.model,
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {
                "maxTokens": self.config.max_tokens,
                "temperature": self.config.temperature,
            },
            **kwargs,
        }
        if system:
            req["system"] = [{"text": system}]
        try:
            return dict(self._client().converse(**req))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            msg = exc.response.get("Error", {}).get("Message", code)
            if code in _THROTTLED:
                raise LLMRateLimited(f"bedrock: {code}: {msg}") from None
            raise classify_status("bedrock", status, f"{code}: {msg}") from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise LLMTimeout(f"bedrock: no answer within {self.config.timeout_secs:g}s") from None
        except EndpointConnectionError as exc:
            raise LLMError(f"bedrock: cannot connect to {exc.kwargs.get('endpoint_url')}") from None
        except BotoCoreError as exc:
            raise LLMError(f"bedrock: {type(exc).__name__}") from None

    def generate(self, prompt: str, system: str | None = None) -> str:
        out = self._converse(prompt, system)
        content = out.get("output", {}).get("message", {}).get("content", [])
        return "".join(c.get("text", "") for c in content)

    def generate_with_schema(
        self, prompt: str, schema: dict[str, Any], name: str = "plan", system: str | None = None
    ) -> dict[str, Any]:
        out = self._converse(
            prompt,
            system,
            toolConfig={
                "tools": [
                    {
                        "toolSpec": {
                            "name": name,
                            "description": "Return the query plan.",
                            "inputSchema": {"json": strip_schema(schema)},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": name}},
            },
        )
        for c in out.get("output", {}).get("message", {}).get("content", []):
            tool = c.get("toolUse")
            if tool and tool.get("name") == name:
                return dict(tool.get("input") or {})
        raise LLMError("bedrock: the reply carried no toolUse block")
