"""``run_script``: run a script from the admin-set ``soar.scripts_dir`` only.

The script is named, not given: a bare file name inside that folder (no path, no
symlink out of it), run without a shell, arguments passed as a list, with the step's
timeout and a bounded output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from mantissa.soar.actions import ActionContext, ActionError, DryRunStop, action


@action("run_script", idempotency="unsafe")
def run_script(ctx: ActionContext, script: str, args: list[str] | None = None) -> dict[str, Any]:
    """Run ``<scripts_dir>/<script> ARGS...``; returns exit code, stdout, stderr."""
    from mantissa.soar.config import soar_config

    folder = soar_config(ctx.runtime).scripts_dir
    if not folder:
        raise ActionError("run_script: soar.scripts_dir is not set (an admin sets it)")
    root = Path(folder).resolve()
    if "/" in script or "\\" in script or script.startswith(".") or not script:
        raise ActionError(f"run_script: {script[:80]!r} must be a file name in scripts_dir")
    path = (root / script).resolve()
    if path.parent != root or not path.is_file() or not os.access(path, os.X_OK):
        raise ActionError(f"run_script: no executable {script!r} in scripts_dir")
    argv = [str(path), *[str(a) for a in (args or [])]]
    if ctx.dry_run:
        ctx.requests.append({"argv": argv})
        raise DryRunStop()
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            timeout=ctx.remaining(),
            shell=False,
            cwd=root,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
    except subprocess.TimeoutExpired:
        raise ActionError(f"run_script: {script} timed out") from None
    out = {
        "script": script,
        "exit_code": proc.returncode,
        "stdout": ctx.mask(proc.stdout.decode(errors="replace")[-20000:]),
        "stderr": ctx.mask(proc.stderr.decode(errors="replace")[-5000:]),
    }
    if proc.returncode != 0:
        raise ActionError(f"run_script: {script} exited {proc.returncode}: {out['stderr'][-300:]}")
    return out
