"""The ``identity:`` section of mantissa.yaml: learning period and per-detection thresholds.

Defaults follow published vendor values where there is one (Elastic: password spray
>= 5 users and >= 15 attempts from one source, push bombing 5 denies in 10 minutes;
impossible travel >= 500 km at >= 800 km/h as in Entra ID Protection / Elastic).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class BruteForce(_Section):
    failures: int = 10
    window_mins: int = 10
    max_ips: int = 3
    success_within_mins: int = 30


class PasswordSpray(_Section):
    users: int = 5
    attempts: int = 15
    window_mins: int = 60
    max_per_user: int = 3
    # distributed: many source IPs new to the organisation fail against many users
    distributed_ips: int = 10
    distributed_users: int = 10
    distributed_new_ip_ratio: float = 0.8


class CredentialStuffing(_Section):
    users: int = 20
    max_per_user: int = 2
    ips: int = 5
    window_mins: int = 60
    unknown_users: int = 1


class MfaFatigue(_Section):
    denies: int = 5
    window_mins: int = 10
    accepted_within_mins: int = 30


class MfaBypass(_Section):
    routine_resets: int = 3  # an actor with this many resets in the baseline is a helpdesk
    mfa_ratio: float = 0.9  # "usually uses MFA": at least this share of baseline sign-ins


class ImpossibleTravel(_Section):
    min_km: float = 500
    min_kmh: float = 800
    relay_cidrs: list[str] = Field(default_factory=list)
    relay_org_keywords: list[str] = Field(
        default_factory=lambda: [
            "amazon", "google", "microsoft", "digitalocean", "ovh", "hetzner", "linode",
            "akamai", "cloudflare", "zscaler", "m247", "datacamp", "vpn", "proxy", "tor",
            "oracle", "alibaba", "vultr", "choopa", "leaseweb", "netskope", "palo alto",
        ]
    )  # fmt: skip


class UnusualTime(_Section):
    min_logins: int = 20
    quiet_hours: int = 2  # no baseline login within this many hours of the hour of day
    require_new_ip: bool = True


class Novelty(_Section):
    min_logins: int = 10


class VolumeSpike(_Section):
    min_events: int = 60
    factor: float = 5.0
    mad_z: float = 8.0
    peer_factor: float = 3.0
    min_days: int = 7


class Escalation(_Section):
    window_mins: int = 60


class OffHoursGrant(_Section):
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday = 0
    start_hour: int = 7
    end_hour: int = 19  # UTC


class Dormant(_Section):
    days: int = 30


class ApiToken(_Section):
    routine_tokens: int = 2


class KillChain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stages: int = 3
    window_hours: int = 24


class Risk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    half_life_hours: float = 72
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "informational": 2, "low": 5, "medium": 15, "high": 30, "critical": 50
        }
    )  # fmt: skip


class IdentityConfig(BaseModel):
    """``identity:`` in mantissa.yaml."""

    model_config = ConfigDict(extra="forbid")
    learning_days: int = 14
    #: alerts are raised for groups whose last event is inside the run window; the view
    #: also reads this far back so windows that straddle two runs still count
    lookback_mins: int = 1440
    providers: list[str] | None = None
    #: ``mantissa serve`` runs the identity detections this often, over windows ending
    #: ``ingest_delay_mins`` before now (late events)
    interval_mins: int = 5
    ingest_delay_mins: int = 2
    #: explicit identity links: canonical identity -> accounts ("alice", "arn:aws:...")
    links: dict[str, list[str]] = Field(default_factory=dict)
    brute_force: BruteForce = Field(default_factory=BruteForce)
    password_spray: PasswordSpray = Field(default_factory=PasswordSpray)
    credential_stuffing: CredentialStuffing = Field(default_factory=CredentialStuffing)
    mfa_fatigue: MfaFatigue = Field(default_factory=MfaFatigue)
    mfa_bypass: MfaBypass = Field(default_factory=MfaBypass)
    impossible_travel: ImpossibleTravel = Field(default_factory=ImpossibleTravel)
    unusual_time: UnusualTime = Field(default_factory=UnusualTime)
    new_device: Novelty = Field(default_factory=Novelty)
    new_country: Novelty = Field(default_factory=Novelty)
    new_asn: Novelty = Field(default_factory=Novelty)
    volume_spike: VolumeSpike = Field(default_factory=VolumeSpike)
    privilege_escalation_chain: Escalation = Field(default_factory=Escalation)
    self_grant: _Section = Field(default_factory=_Section)
    off_hours_grant: OffHoursGrant = Field(default_factory=OffHoursGrant)
    dormant_account: Dormant = Field(default_factory=Dormant)
    new_api_token: ApiToken = Field(default_factory=ApiToken)
    kill_chain: KillChain = Field(default_factory=KillChain)
    risk: Risk = Field(default_factory=Risk)


def load(runtime: object) -> IdentityConfig:
    return runtime.config.section("identity", IdentityConfig)  # type: ignore[attr-defined]
