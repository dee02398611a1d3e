"""The demo's world: a small company, its people, machines and a few attackers."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field


@dataclass
class Person:
    name: str
    email: str
    country: str
    city: str
    ip: str
    user_agent: str
    department: str
    admin: bool = False


OFFICES = [
    ("US", "San Francisco", "198.51.100."),
    ("US", "New York", "203.0.113."),
    ("GB", "London", "192.0.2."),
    ("DE", "Berlin", "100.64.12."),
]

UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64",
]

FIRST = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "zoe",
]

ATTACKER_IPS = ["185.220.101.7", "45.137.21.9", "193.32.162.44", "91.240.118.172"]
ATTACKER_UA = "python-requests/2.31.0"


@dataclass
class Scenario:
    """Deterministic for a seed; spans ``days`` days ending at ``end``."""

    seed: int = 7
    days: int = 3
    end: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))
    domain: str = "example.com"
    account_id: str = "123456789012"
    people: list[Person] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if not self.people:
            for i, name in enumerate(FIRST):
                country, city, net = OFFICES[i % len(OFFICES)]
                self.people.append(
                    Person(
                        name=name,
                        email=f"{name}@{self.domain}",
                        country=country,
                        city=city,
                        ip=f"{net}{10 + i}",
                        user_agent=UAS[i % len(UAS)],
                        department=["engineering", "sales", "finance", "it"][i % 4],
                        admin=name in ("alice", "trent"),
                    )
                )

    @property
    def start(self) -> dt.datetime:
        return self.end - dt.timedelta(days=self.days)

    def work_time(self) -> dt.datetime:
        """A random time during working hours within the window."""
        while True:
            t = self.start + dt.timedelta(seconds=self.rng.uniform(0, self.days * 86400))
            if 7 <= t.hour <= 19 or self.rng.random() < 0.08:
                return t

    def recent(self, hours_ago: float) -> dt.datetime:
        return self.end - dt.timedelta(hours=hours_ago)

    def person(self) -> Person:
        return self.rng.choice(self.people)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
