"""Demo Docker: daemon events (``docker events --format '{{json .}}'``) and container logs.

Everyday: CI builds pull images and start/stop short-lived containers; the web container
logs requests. Planted: on the build host, a privileged container with the host's root
mounted and host PID namespace, an ``exec`` into it running a shell, then the container
killed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from mantissa.demo import generator
from mantissa.demo.scenario import Scenario

IMAGES = ["node:20-alpine", "python:3.12-slim", "golang:1.22", "postgres:16"]


def _ev(
    sc: Scenario, t: dt.datetime, typ: str, action: str, actor: str, attrs: dict[str, str]
) -> dict[str, Any]:
    ns = int(t.timestamp()) * 10**9 + t.microsecond * 1000 + sc.rng.randrange(1000)
    ev: dict[str, Any] = {
        "Type": typ,
        "Action": action,
        "Actor": {"ID": actor, "Attributes": attrs},
        "scope": "local",
        "time": ns // 10**9,
        "timeNano": ns,
    }
    if typ == "container":  # what daemons before API 1.52 still add
        ev.update({"status": action, "id": actor, "from": attrs.get("image", "")})
    return ev


def events(sc: Scenario) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = sc.rng
    out: list[dict[str, Any]] = []
    for i in range(sc.days * 40):
        t = sc.work_time()
        image = rng.choice(IMAGES)
        cid = f"{rng.getrandbits(256):064x}"
        name = f"ci-job-{i}"
        out.append(_ev(sc, t, "image", "pull", image, {"name": image.split(":")[0]}))
        for k, action in enumerate(["create", "start", "die", "destroy"]):
            attrs = {"image": image, "name": name}
            if action == "die":
                attrs["exitCode"] = "0" if rng.random() > 0.1 else "1"
            out.append(
                _ev(sc, t + dt.timedelta(seconds=5 + 40 * k), "container", action, cid, attrs)
            )
    t0 = sc.recent(4.4)
    cid = f"{rng.getrandbits(256):064x}"
    attrs = {"image": "alpine:3.19", "name": "debug"}
    out.append(_ev(sc, t0, "container", "create", cid, {**attrs, "privileged": "true"}))
    out.append(_ev(sc, t0 + dt.timedelta(seconds=2), "container", "start", cid, attrs))
    out.append(
        _ev(
            sc,
            t0 + dt.timedelta(seconds=30),
            "container",
            "exec_create: nsenter -t 1 -m -u -i -n sh",
            cid,
            {**attrs, "execID": "e1"},
        )
    )
    out.append(
        _ev(
            sc,
            t0 + dt.timedelta(seconds=31),
            "container",
            "exec_start: nsenter -t 1 -m -u -i -n sh",
            cid,
            {**attrs, "execID": "e1"},
        )
    )
    out.append(
        _ev(sc, t0 + dt.timedelta(minutes=9), "container", "kill", cid, {**attrs, "signal": "9"})
    )
    out.append(
        _ev(
            sc,
            t0 + dt.timedelta(minutes=9, seconds=1),
            "container",
            "die",
            cid,
            {**attrs, "exitCode": "137"},
        )
    )
    logs = []
    for _ in range(sc.days * 150):
        t = sc.work_time()
        path = rng.choice(["/", "/health", "/api/orders", "/login"])
        code = rng.choice([200, 200, 200, 302, 404])
        logs.append(
            {
                "log": f'{rng.choice(["198.51.100.10", "203.0.113.7"])} - - "GET {path} '
                f'HTTP/1.1" {code} {rng.randrange(100, 5000)}\n',
                "stream": "stdout",
                "time": t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
            }
        )
    return out, logs


@generator("docker")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    base = out_dir / "docker"
    base.mkdir(parents=True, exist_ok=True)
    evs, logs = events(sc)
    f1 = base / "docker-events.json"
    f1.write_text("".join(json.dumps(e) + "\n" for e in sorted(evs, key=lambda e: e["timeNano"])))
    f2 = base / "4386fb97867d-json.log"
    f2.write_text("".join(json.dumps(x) + "\n" for x in sorted(logs, key=lambda x: x["time"])))
    return [f1, f2]
