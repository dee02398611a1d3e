"""Versioned playbooks: YAML under ``<lake>/playbooks/<playbook-id>/<version>/playbook.yaml``
(atomic writes through the runtime's storage) plus an index in the state store.

Importing identical content again is a no-op; changed content creates a new version (the
file's ``version``, or the next free patch version when that one is taken). Old versions
stay readable and runnable as ``ID@VERSION``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from mantissa.config import yaml_line
from mantissa.errors import ConfigError, NotFound
from mantissa.soar import templates
from mantissa.soar.model import Playbook
from mantissa.soar.schema import audit, playbooks
from mantissa.state.store import utcnow


class PlaybookInvalid(ConfigError):
    """A playbook file failed validation (message carries file:line: field: cause)."""

    code = "playbook_invalid"


@dataclass
class Imported:
    id: str
    version: str
    status: str
    created: bool
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "status": self.status}


def _line(text: str, loc: tuple[Any, ...]) -> int | None:
    return yaml_line(text, loc)


def parse(text: str, source: str = "<playbook>") -> Playbook:
    """Validate playbook YAML; compile its templates; check its action types."""
    from mantissa.soar.actions import action_types

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise PlaybookInvalid(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise PlaybookInvalid(f"{source}:1: a playbook must be a mapping")
    try:
        pb = Playbook.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = _line(text, loc)
        dotted = ".".join(str(p) for p in loc) or "(playbook)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise PlaybookInvalid(f"{source}:{line or 1}: {dotted}: {msg}") from None
    known = action_types()
    for i, step in enumerate(pb.steps):
        where = f"{source}:{_line(text, ('steps', i)) or 1}: steps[{i}] ({step.id})"
        if step.action_type not in known:
            raise PlaybookInvalid(
                f"{where}: action_type: unknown action {step.action_type!r}",
                hint="known: " + ", ".join(sorted(known)),
            )
        try:
            templates.check(step.parameters, f"{where}.parameters")
            if step.condition:
                templates.check_expression(step.condition, f"{where}.condition")
            if step.for_each:
                templates.check_expression(step.for_each, f"{where}.for_each")
        except templates.TemplateRejected as exc:
            raise PlaybookInvalid(exc.message) from None
    return pb


def _bump(version: str, taken: set[str]) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    while f"{major}.{minor}.{patch}" in taken:
        patch += 1
    return f"{major}.{minor}.{patch}"


class PlaybookStore:
    """Import, list and load playbook versions for one runtime."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.state = runtime.state
        self._cache: dict[tuple[str, str], Playbook] = {}

    def import_text(self, text: str, source: str = "<playbook>", actor: str = "cli") -> Imported:
        pb = parse(text, source)
        digest = hashlib.sha256(text.encode()).hexdigest()
        pid = pb.pid
        with self.state.begin() as conn:
            rows = conn.execute(sa.select(playbooks).where(playbooks.c.id == pid)).all()
            for r in rows:
                if r.sha256 == digest:
                    return Imported(pid, r.version, r.status, False, source)
            taken = {r.version for r in rows}
            version = _bump(pb.version, taken)
            if version != pb.version:
                data = yaml.safe_load(text)
                data["version"] = version
                text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
                pb = parse(text, source)
            key = f"playbooks/{pid}/{version}/playbook.yaml"
            self.runtime.storage.write_bytes(key, text.encode())
            now = utcnow()
            conn.execute(
                playbooks.insert().values(
                    id=pid,
                    version=version,
                    seq=len(rows) + 1,
                    name=pb.name,
                    status=pb.status,
                    trigger_type=pb.trigger.type,
                    trigger=pb.trigger.model_dump(mode="json"),
                    sha256=digest,
                    key=key,
                    source=source,
                    imported_at=now,
                )
            )
            conn.execute(
                audit.insert().values(
                    at=now,
                    execution_id=None,
                    kind="playbook",
                    actor=actor,
                    detail={"event": "imported", "id": pid, "version": version, "source": source},
                )
            )
        return Imported(pid, version, pb.status, True, source)

    def import_path(self, path: Path, actor: str = "cli") -> list[Imported]:
        files = (
            sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
            if path.is_dir()
            else [path]
        )
        if not files:
            raise PlaybookInvalid(f"{path}: no .yml/.yaml playbook files")
        out = []
        for f in files:
            try:
                text = f.read_text()
            except OSError as exc:
                raise PlaybookInvalid(f"{f}: cannot read: {exc.strerror}") from None
            out.append(self.import_text(text, str(f), actor))
        return out

    def set_status(self, pid: str, version: str, status: str, actor: str = "cli") -> None:
        pb = self.load(pid, version)
        pb.status = status  # type: ignore[assignment]
        with self.state.begin() as conn:
            conn.execute(
                playbooks.update()
                .where(playbooks.c.id == pid, playbooks.c.version == pb.version)
                .values(status=status)
            )
        self._cache.pop((pid, pb.version), None)

    def list(self) -> list[dict[str, Any]]:
        with self.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(playbooks).order_by(playbooks.c.id, playbooks.c.seq)
            ).all()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            e = out.setdefault(r.id, {"id": r.id, "versions": []})
            e["versions"].append(r.version)
            e.update(name=r.name, status=r.status, trigger=r.trigger, latest=r.version)
        for e in out.values():
            active = self._latest_active_row(e["id"], rows)
            if active is not None:
                e.update(status="active", active_version=active.version, trigger=active.trigger)
        return list(out.values())

    @staticmethod
    def _latest_active_row(pid: str, rows: list[Any]) -> Any:
        act = [r for r in rows if r.id == pid and r.status == "active"]
        return max(act, key=lambda r: r.seq) if act else None

    def resolve(self, ref: str) -> tuple[str, str]:
        """``ID`` (latest active version, else the latest) or ``ID@VERSION``."""
        pid, _, version = ref.partition("@")
        with self.state.engine.connect() as conn:
            rows = conn.execute(sa.select(playbooks).where(playbooks.c.id == pid)).all()
        if not rows:
            raise NotFound(f"playbook {pid!r} not found", hint="mantissa playbooks list")
        if version:
            if version not in {r.version for r in rows}:
                raise NotFound(
                    f"playbook {pid!r} has no version {version}",
                    hint="versions: " + ", ".join(r.version for r in rows),
                )
            return pid, version
        active = self._latest_active_row(pid, rows)
        row = active if active is not None else max(rows, key=lambda r: r.seq)
        return pid, row.version

    def latest_active(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, version, trigger) of the latest active version of each playbook."""
        with self.state.engine.connect() as conn:
            rows = conn.execute(sa.select(playbooks).where(playbooks.c.status == "active")).all()
        best: dict[str, Any] = {}
        for r in rows:
            if r.id not in best or r.seq > best[r.id].seq:
                best[r.id] = r
        return [(r.id, r.version, r.trigger) for r in best.values()]

    def text(self, pid: str, version: str) -> str:
        with self.state.engine.connect() as conn:
            row = conn.execute(
                sa.select(playbooks.c.key).where(
                    playbooks.c.id == pid, playbooks.c.version == version
                )
            ).first()
        if row is None:
            raise NotFound(f"playbook {pid}@{version} not found")
        return self.runtime.storage.read_bytes(row[0]).decode()

    def load(self, pid: str, version: str | None = None) -> Playbook:
        if version is None:
            pid, version = self.resolve(pid)
        hit = self._cache.get((pid, version))
        if hit is None:
            hit = parse(self.text(pid, version), f"{pid}@{version}")
            with self.state.engine.connect() as conn:
                st = conn.execute(
                    sa.select(playbooks.c.status).where(
                        playbooks.c.id == pid, playbooks.c.version == version
                    )
                ).scalar()
            if st:
                hit.status = st
            self._cache[(pid, version)] = hit
        return hit
