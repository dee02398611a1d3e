"""Azure OpenAI through the official ``openai`` SDK's ``AzureOpenAI`` client.

``base_url`` is the resource endpoint (``https://<resource>.openai.azure.com``),
``deployment`` the deployment name (it replaces the model in the URL), ``api_version``
the data-plane version. Key: ``AZURE_OPENAI_API_KEY`` (sent as the ``api-key`` header).
"""

from __future__ import annotations

from typing import Any

import openai as sdk

from mantissa.errors import ConfigError
from mantissa.llm.openai import OpenAIProvider

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAIProvider):
    name = "azure_openai"
    default_model = "gpt-4o-mini"
    key_env = "AZURE_OPENAI_API_KEY"

    def _client(self) -> Any:
        if not self.config.base_url:
            raise ConfigError(
                "llm provider azure_openai needs base_url",
                hint="the resource endpoint, https://<resource>.openai.azure.com",
            )
        deployment = self.config.deployment or self.model
        self.model = deployment
        return sdk.AzureOpenAI(
            api_key=self.api_key(),
            azure_endpoint=self.config.base_url,
            azure_deployment=deployment,
            api_version=self.config.api_version or DEFAULT_API_VERSION,
            timeout=self.config.timeout_secs,
            max_retries=self.config.max_retries,
        )
