"""``playbooks codegen``: the module reference's generated Lambda handler for a playbook.

The generated module has the reference's shape (``lambda_handler`` running the steps in
``depends_on`` order, one ``execute_step_N`` per step, ``on_failure`` honoured) and calls
back into :func:`run_action`, which renders parameters in the same sandbox and runs the
registered action. Parameters are embedded as data literals, never as code. The output
is parsed and checked (:func:`check`) before it is returned: only allow-listed imports and
names, no ``exec``/``eval``/``open``/``__import__``/attribute tricks, action types from the
registry only. Secrets stay ``${env:...}``/``${secret:...}`` references in the connections
of ``mantissa.yaml``, resolved at send time.
"""

from __future__ import annotations

import ast
import datetime as dt
import time
from typing import Any

from mantissa.errors import MantissaError
from mantissa.soar.model import Playbook

ALLOWED_IMPORTS = {"json", "logging", "typing", "mantissa.soar.codegen"}
FORBIDDEN_NAMES = {
    "exec",
    "eval",
    "compile",
    "open",
    "__import__",
    "globals",
    "locals",
    "vars",
    "getattr",
    "setattr",
    "delattr",
    "input",
    "breakpoint",
    "os",
    "sys",
    "subprocess",
}


class CodegenRejected(MantissaError):
    code = "codegen_rejected"
    http_status = 400


def _text(value: str, n: int = 100) -> str:
    """Prose safe inside a comment or docstring: one line, no quotes or backslashes."""
    return "".join(c if c.isprintable() and c not in '\\"' else " " for c in value)[:n]


def _func(i: int) -> str:
    return f"execute_step_{i}"


def generate(pb: Playbook, now: dt.datetime | None = None) -> str:
    """Python source of the handler for ``pb`` (checked with :func:`check`)."""
    from mantissa.soar.actions import action_types

    known = action_types()
    now = now or dt.datetime.now(dt.UTC)
    order = pb.order()
    out = [
        f"# Auto-generated from playbook: {_text(pb.name, 200)}",
        f"# Version: {pb.version}",
        f"# Generated at: {now.isoformat().replace('+00:00', 'Z')}",
        "",
        "import json",
        "import logging",
        "from typing import Any, Dict",
        "",
        "from mantissa.soar.codegen import run_action, skip_step",
        "",
        "logger = logging.getLogger()",
        "",
        f"PLAYBOOK_ID = {pb.pid!r}",
        f"VARS = json.loads({_json(pb.vars)!r})",
        "",
    ]
    for i, step in enumerate(order, 1):
        if step.action_type not in known:
            raise CodegenRejected(f"step {step.id}: action {step.action_type!r} is not allowed")
        out += [
            "",
            f"def {_func(i)}(alert: Dict[str, Any], outputs: Dict[str, Any]) -> Any:",
            f'    """Step {i}: {_text(step.name)} ({step.action_type})."""',
            f"    params = json.loads({_json(step.parameters)!r})",
            f"    condition = {step.condition!r}",
            f"    return run_action({step.action_type!r}, params, alert, VARS, outputs, condition,",
            f"                      approval={step.requires_approval!r},"
            f" timeout_seconds={step.timeout_seconds})",
            "",
        ]
    out += [
        "",
        "def lambda_handler(event: Dict[str, Any], context) -> Dict[str, Any]:",
        '    """Execute playbook steps."""',
        "    alert = event.get('alert', {})",
        "    execution_id = event.get('execution_id')",
        "    results = []",
        "    outputs: Dict[str, Any] = {}",
        "    logger.info('playbook %s execution %s', PLAYBOOK_ID, execution_id)",
    ]
    for i, step in enumerate(order, 1):
        out += [
            "",
            f"    # Step {i}: {_text(step.name)}",
            "    try:",
            f"        if skip_step({step.depends_on!r}, outputs):",
            f"            results.append({{'step': {step.id!r}, 'status': 'skipped'}})",
            "        else:",
            f"            result = {_func(i)}(alert, outputs)",
            f"            outputs[{step.id!r}] = {{'output': result, 'status': 'succeeded'}}",
            f"            results.append({{'step': {step.id!r}, 'status': 'success',"
            " 'result': result})",
            "    except Exception as e:",
            f"        outputs[{step.id!r}] = {{'output': None, 'status': 'failed'}}",
            f"        results.append({{'step': {step.id!r}, 'status': 'error', 'error': str(e)}})",
        ]
        if step.on_failure == "stop":
            out += [
                "        # on_failure: stop",
                "        return {'status': 'failed', 'results': results}",
            ]
        else:
            out += ["        # on_failure: continue"]
    out += ["", "    return {'status': 'completed', 'results': results}", ""]
    code = "\n".join(out)
    check(code, {s.action_type for s in order})
    return code


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def check(code: str, actions: set[str] | None = None) -> None:
    """Refuse generated code that does anything but call allow-listed actions."""
    from mantissa.soar.actions import action_types

    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise CodegenRejected(f"generated code does not parse: {exc}") from None
    known = set(action_types())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name not in ALLOWED_IMPORTS:
                    raise CodegenRejected(f"import {a.name} is not allowed")
        elif isinstance(node, ast.ImportFrom):
            if node.module not in ALLOWED_IMPORTS:
                raise CodegenRejected(f"import from {node.module} is not allowed")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            raise CodegenRejected(f"name {node.id} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise CodegenRejected(f"attribute {node.attr} is not allowed")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "run_action"
        ):
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and first.value in known):
                raise CodegenRejected("run_action needs a literal, allow-listed action type")
        elif isinstance(node, ast.Lambda | ast.Global | ast.Nonlocal | ast.AsyncFunctionDef):
            raise CodegenRejected(f"{type(node).__name__} is not allowed")
    for a in actions or set():
        if a not in known:
            raise CodegenRejected(f"action {a!r} is not allowed")


# -- what generated code calls -------------------------------------------------------------
_RUNTIME: Any = None


def skip_step(depends_on: list[str], outputs: dict[str, Any]) -> bool:
    return any(outputs.get(d, {}).get("status") != "succeeded" for d in depends_on)


def run_action(
    action_type: str,
    params: dict[str, Any],
    alert: dict[str, Any],
    vars: dict[str, Any],
    outputs: dict[str, Any],
    condition: str | None = None,
    *,
    approval: bool = False,
    timeout_seconds: int = 300,
) -> Any:
    """Render ``params`` in the sandbox and run ``action_type`` (used by generated code).
    The runtime comes from ``MANTISSA_HOME``/its ``mantissa.yaml`` (connections)."""
    from mantissa.runtime import Runtime
    from mantissa.soar import templates
    from mantissa.soar.actions import ActionContext, get_action

    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = Runtime()
    if approval:
        raise CodegenRejected(
            f"{action_type} requires approval: run it with `mantissa "
            "playbooks run`, which waits for a person"
        )
    ctx = {"alert": alert, "input": alert, "vars": vars, "steps": outputs}
    if condition and not templates.evaluate(condition, ctx, "condition"):
        return {"skipped": True}
    spec = get_action(action_type)
    rendered = spec.validate(templates.render_value(params, ctx, "parameters"), action_type)
    actx = ActionContext(
        runtime=_RUNTIME,
        execution_id="lambda",
        step_key=action_type,
        idempotency_key=f"lambda-{time.time_ns()}",
        deadline=time.monotonic() + timeout_seconds,
    )
    return spec.fn(actx, **rendered)
