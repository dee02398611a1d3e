"""SOAR tables in the state store (SQLite or PostgreSQL), declared on the shared metadata.

Executions, their steps and approvals are rows; timers are columns of those rows
(``next_attempt_at``, ``expires_at``, ``deadline_at``), never sleeps. ``soar_audit`` is
append-only: nothing updates or deletes it.
"""

from __future__ import annotations

import sqlalchemy as sa

from mantissa.state.store import metadata

TZ = sa.DateTime(timezone=True)

playbooks = sa.Table(
    "soar_playbooks",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),  # import order within the id
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("trigger_type", sa.String(16), nullable=False),
    sa.Column("trigger", sa.JSON, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),  # object key in the lake storage
    sa.Column("source", sa.String(1024)),
    sa.Column("imported_at", TZ, nullable=False),
)

executions = sa.Table(
    "soar_executions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("playbook_id", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("alert_id", sa.String(64), index=True),
    sa.Column("input", sa.JSON, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("error", sa.Text),
    sa.Column("actor", sa.String(256)),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Column("deadline_at", TZ, nullable=False),
    sa.Column("ended_at", TZ),
    # one alert starts a playbook once: (playbook, alert) is unique when alert_id is set
    sa.UniqueConstraint("playbook_id", "alert_id", name="uq_soar_exec_alert"),
)

steps = sa.Table(
    "soar_steps",
    metadata,
    sa.Column("execution_id", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(96), primary_key=True),  # step id, or id[index] for for_each
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("input", sa.JSON),
    sa.Column("output", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("idempotency_key", sa.String(128)),
    sa.Column("started_at", TZ),
    sa.Column("ended_at", TZ),
    sa.Column("next_attempt_at", TZ),
)

approvals = sa.Table(
    "soar_approvals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("execution_id", sa.String(40), nullable=False, index=True),
    sa.Column("step_key", sa.String(96), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),  # rendered, secrets masked
    sa.Column("parameters_sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("requested_at", TZ, nullable=False),
    sa.Column("expires_at", TZ, nullable=False, index=True),
    sa.Column("auto_approve", sa.Boolean, nullable=False, default=False),
    sa.Column("decided_by", sa.String(256)),
    sa.Column("decided_at", TZ),
    sa.Column("via", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.UniqueConstraint("execution_id", "step_key", name="uq_soar_approval_step"),
)

audit = sa.Table(
    "soar_audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TZ, nullable=False),
    sa.Column("execution_id", sa.String(40), index=True),
    sa.Column("kind", sa.String(32), nullable=False),  # transition|decision|call|playbook
    sa.Column("actor", sa.String(256)),
    sa.Column("detail", sa.JSON, nullable=False),
)


def _install_trigger() -> None:
    # this module is imported whenever a state store opens (TABLE_MODULES): the alert
    # trigger is therefore on the alert path of every runtime, CLI and serve alike
    from mantissa.soar.triggers import install

    install()


_install_trigger()
