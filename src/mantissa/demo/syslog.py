"""Demo syslog: auth.log from Linux servers, with a planted SSH brute force and sudo abuse.

Planted: hundreds of failed SSH passwords from one attacker IP across common user names,
an accepted password for ``deploy`` from the same IP, then sudo to read ``/etc/shadow``
and a new user created (persistence).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mantissa.demo import generator
from mantissa.demo.scenario import ATTACKER_IPS, Scenario

HOSTS = ["web-1", "web-2", "db-1", "bastion"]


def _line(t: dt.datetime, host: str, prog: str, pid: int, msg: str) -> tuple[dt.datetime, str]:
    # RFC 3339 timestamps, as rsyslog's default on current distributions writes them
    ts = t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    return t, f"{ts} {host} {prog}[{pid}]: {msg}"


def lines(sc: Scenario) -> list[tuple[dt.datetime, str]]:
    rng = sc.rng
    out = []
    for _ in range(sc.days * 150):
        p = sc.person()
        t = sc.work_time()
        host = rng.choice(HOSTS)
        pid = rng.randint(1000, 60000)
        port = rng.randint(40000, 65000)
        out.append(
            _line(
                t,
                host,
                "sshd",
                pid,
                f"Accepted publickey for {p.name} from {p.ip} port {port} ssh2: "
                "ED25519 SHA256:q1w2e3r4t5y6",
            )
        )
        out.append(
            _line(
                t + dt.timedelta(seconds=1),
                host,
                "sshd",
                pid,
                f"pam_unix(sshd:session): session opened for user {p.name}(uid=1000) by (uid=0)",
            )
        )
        if rng.random() < 0.3:
            out.append(
                _line(
                    t + dt.timedelta(minutes=2),
                    host,
                    "sudo",
                    pid + 1,
                    f"   {p.name} : TTY=pts/0 ; PWD=/home/{p.name} ; USER=root ; "
                    "COMMAND=/usr/bin/systemctl restart app",
                )
            )
        out.append(
            _line(
                t + dt.timedelta(minutes=rng.randint(5, 90)),
                host,
                "sshd",
                pid,
                f"pam_unix(sshd:session): session closed for user {p.name}",
            )
        )
    # planted: brute force on the bastion
    t0 = sc.recent(8)
    ip = ATTACKER_IPS[0]
    names = ["root", "admin", "ubuntu", "test", "oracle", "deploy", "git", "postgres"]
    for i in range(240):
        user = names[i % len(names)]
        invalid = "invalid user " if user not in ("root", "deploy") else ""
        out.append(
            _line(
                t0 + dt.timedelta(seconds=2 * i),
                "bastion",
                "sshd",
                7000 + i,
                f"Failed password for {invalid}{user} from {ip} port {50000 + i} ssh2",
            )
        )
    t1 = t0 + dt.timedelta(seconds=500)
    out.append(
        _line(
            t1, "bastion", "sshd", 7999, f"Accepted password for deploy from {ip} port 51999 ssh2"
        )
    )
    out.append(
        _line(
            t1 + dt.timedelta(minutes=1),
            "bastion",
            "sudo",
            8000,
            "   deploy : TTY=pts/3 ; PWD=/home/deploy ; USER=root ; "
            "COMMAND=/usr/bin/cat /etc/shadow",
        )
    )
    out.append(
        _line(
            t1 + dt.timedelta(minutes=2),
            "bastion",
            "useradd",
            8001,
            "new user: name=sysupdate, UID=0, GID=0, home=/root, shell=/bin/bash",
        )
    )
    return out


@generator("syslog")
def generate(sc: Scenario, out_dir: Path) -> list[Path]:
    """One auth.log per host."""
    base = out_dir / "syslog"
    base.mkdir(parents=True, exist_ok=True)
    per_host: dict[str, list[str]] = {}
    for _, line in sorted(lines(sc)):
        per_host.setdefault(line.split(" ", 2)[1], []).append(line)
    files = []
    for host, ls in per_host.items():
        f = base / f"{host}-auth.log"
        f.write_text("\n".join(ls) + "\n")
        files.append(f)
    return files
