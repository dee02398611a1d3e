"""``type: file``: append each delivery as one JSON line to a local file.

Local (not external, so not redacted by default): the demo's destination and a simple
audit trail. A delivery retried after a crash is written once: the file is checked for
its ``delivery_id`` before appending.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson

from mantissa.alerts.destinations.base import Delivery, Destination, DestinationConfig
from mantissa.alerts.destinations.webhook import alert_body
from mantissa.errors import PermanentDeliveryError, RetryableDeliveryError


class FileConfig(DestinationConfig):
    #: relative paths are under the data dir
    path: str = "alerts/deliveries.jsonl"
    fsync: bool = False


class File(Destination):
    type = "file"
    Config = FileConfig
    external_default = False
    supports_updates = True
    delivery_guarantee = "effectively_once (delivery ids checked before appending)"
    config: FileConfig

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._lock = threading.Lock()
        self._seen: set[str] | None = None

    @property
    def path(self) -> Path:
        p = Path(os.path.expanduser(self.config.path))
        if not p.is_absolute() and self.context.data_dir is not None:
            p = self.context.data_dir / p
        return p

    def _load_seen(self) -> set[str]:
        seen: set[str] = set()
        if self.path.exists():
            with self.path.open("rb") as fh:
                for line in fh:
                    try:
                        seen.add(orjson.loads(line)["delivery_id"])
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        continue  # a torn last line from a crash: ignore it
        return seen

    def _mend_torn_line(self) -> None:
        # a crash mid-write can leave a last line without its newline: end it so the next
        # record starts on a line of its own
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def send(self, delivery: Delivery) -> dict[str, Any]:
        line = orjson.dumps(alert_body(delivery)) + b"\n"
        with self._lock:
            try:
                if self._seen is None:
                    self._seen = self._load_seen()
                    self._mend_torn_line()
                if delivery.idempotency_key in self._seen:
                    return {"path": str(self.path), "duplicate": True}
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    fh.write(line)
                    fh.flush()
                    if self.config.fsync:
                        os.fsync(fh.fileno())
            except PermissionError as exc:
                raise PermanentDeliveryError(f"file: cannot write {self.path}: {exc}") from None
            except OSError as exc:
                raise RetryableDeliveryError(f"file: cannot write {self.path}: {exc}") from None
            self._seen.add(delivery.idempotency_key)
        return {"path": str(self.path)}
