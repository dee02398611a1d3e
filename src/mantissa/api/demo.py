"""Demo step "Console" (order 95): a token to sign in with, and how to open the console.

The token is for this local data dir only; running the demo again revokes the previous
demo token first, so tokens do not pile up.
"""

from __future__ import annotations

from mantissa.api.auth import TokenStore
from mantissa.demo import DemoContext, step

DEMO_TOKEN_NAME = "demo-console"


@step("Console", 95)
def console_step(ctx: DemoContext) -> None:
    rt = ctx.runtime
    store = TokenStore(rt.state)
    for old in store.list():
        if old.name == DEMO_TOKEN_NAME:
            store.revoke(old.id)
    info, secret = store.create("analyst", name=DEMO_TOKEN_NAME, created_by="demo")
    ctx.results["console"] = {"token_id": info.id, "role": info.role}
    con = ctx.console
    con.print(f"  start it:  mantissa --data-dir {rt.data_dir} serve")
    con.print("  open:      http://127.0.0.1:8000/console")
    con.print(f"  sign in with this analyst token ({info.id}):")
    con.print(f"             {secret}", highlight=False, soft_wrap=True)
    con.print("  (`mantissa tokens create --role viewer|analyst|engineer|admin` makes more)")
