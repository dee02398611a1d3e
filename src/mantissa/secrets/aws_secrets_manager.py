"""``secrets: {backend: aws_secrets_manager, region: us-east-1}``: ``${secret:prod/okta}``
is ``GetSecretValue(SecretId="prod/okta")`` (``SecretString``, or a UTF-8 ``SecretBinary``);
``${secret:prod/okta#token}`` picks the ``token`` key of a JSON secret. Credentials come from
boto3's usual chain (environment, profile, instance role); ``endpoint_url`` points at a VPC
endpoint or a test server. IAM: ``secretsmanager:GetSecretValue`` on the secrets (and
``kms:Decrypt`` for a customer-managed key). Needs the ``aws`` extra (boto3).

botocore logs response bodies at DEBUG: its loggers are held at INFO here so a secret's
value never reaches a log, whatever the root level.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from mantissa.errors import ConfigError
from mantissa.secrets import SecretBackend, SecretNotFound, SecretsConfig

for _name in ("botocore", "boto3", "urllib3"):
    _lg = logging.getLogger(_name)
    if _lg.level == logging.NOTSET or _lg.level < logging.INFO:
        _lg.setLevel(logging.INFO)


class AwsSecretsManagerBackend(SecretBackend):
    type = "aws_secrets_manager"

    def __init__(self, config: SecretsConfig) -> None:
        super().__init__(config)
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import boto3
                    from botocore.config import Config
                except ImportError:
                    raise ConfigError(
                        "secrets.backend aws_secrets_manager needs boto3",
                        hint="pip install 'mantissa-log[aws]'",
                    ) from None
                self._client = boto3.client(
                    "secretsmanager",
                    region_name=self.config.region,
                    endpoint_url=self.config.endpoint_url,
                    config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3}),
                )
            return self._client

    def get(self, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            out = self.client().get_secret_value(SecretId=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretNotFound(f"secret {name!r}: AWS Secrets Manager answered {code}") from None
        except BotoCoreError as exc:
            raise SecretNotFound(
                f"secret {name!r}: AWS Secrets Manager unreachable ({type(exc).__name__})"
            ) from None
        if out.get("SecretString") is not None:
            return str(out["SecretString"])
        blob = out.get("SecretBinary")
        if isinstance(blob, bytes | bytearray):
            try:
                return bytes(blob).decode()
            except UnicodeDecodeError:
                raise SecretNotFound(f"secret {name!r}: SecretBinary is not UTF-8") from None
        raise SecretNotFound(f"secret {name!r}: no SecretString or SecretBinary")
