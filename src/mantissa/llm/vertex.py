"""Google Vertex AI (Gemini on Vertex) through the ``google-genai`` SDK, ``vertexai=True``.

Needs ``project`` and ``location``. Credentials: Application Default Credentials
(workload identity, ``gcloud auth application-default login``), or an OAuth access
token in ``GOOGLE_OAUTH_ACCESS_TOKEN`` (``api_key_env`` renames it).
"""

from __future__ import annotations

import os
from typing import Any

from google import genai

from mantissa.errors import ConfigError
from mantissa.llm.google_ai import GoogleAIProvider


class VertexProvider(GoogleAIProvider):
    name = "vertex"
    default_model = "gemini-2.5-flash"
    key_env = "GOOGLE_OAUTH_ACCESS_TOKEN"

    def _client(self) -> genai.Client:
        if not self.config.project:
            raise ConfigError("llm provider vertex needs project", hint="set llm.project")
        token = os.environ.get(self.config.api_key_env or self.key_env or "")
        creds: Any = None
        if token:
            from google.oauth2.credentials import Credentials

            creds = Credentials(token=token)
        return genai.Client(
            vertexai=True,
            project=self.config.project,
            location=self.config.location or "us-central1",
            credentials=creds,
            http_options=self._http_options(),
        )
