"""Everything a request needs, built once by :func:`dashboards.app.create_app` and kept on ``app.state``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from alerts.queries import StoreBackend
from alerts.store.handover import HandoverStore
from dashboards.events import AlertFeed
from dashboards.families import GuardianBook
from dashboards.security import AccountThrottle, LoginLimiter
from dashboards.sessions import SessionManager
from dashboards.telemetry import BaselineLookup, ChartReader


def now_ms() -> int:
    """Wall-clock time in UTC epoch ms (the default clock)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class OpsNotice:
    """One thing for IT to act on: an i18n key (``ops.*``) and its values."""

    key: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass
class AppContext:
    """Shared services of the web application."""

    backend: StoreBackend
    sessions: SessionManager
    limiter: AccountThrottle
    ip_limiter: LoginLimiter
    handover: HandoverStore
    """Shift handover notes (the alert store's ``HandoverStore``)."""
    clock: Callable[[], int] = now_ms
    secure_cookies: bool = False
    telemetry: ChartReader | None = None
    baselines: BaselineLookup | None = None
    learned: Callable[[str], Mapping[str, object]] | None = None
    """What the detection core learned about a home (``Engine.learned``); None when no engine runs in this process."""
    learned_saved: Callable[[str], Mapping[str, object]] | None = None
    """Without ``learned``: what the backend saved of it (blocking, read in a thread; ``saved_ms`` says when)."""
    poll_interval_s: float = 0.2
    """How often the live feed checks the store for changed alerts (well within the 1 s target)."""
    gateway_secret: str = ""
    """Derives per-gateway MQTT passwords (``ELDERCARE_GATEWAY_SECRET``); empty disables provisioning."""
    provisioner: Callable[[str], None] | None = None
    """Adds a gateway account and its ACL to the running broker (``eldercare.stack.Broker.provision``)."""
    guardians: GuardianBook | None = None
    """Guardians with consent (``alerts.store.guardians.GuardianStore``); None: no family status pages."""
    operations: Callable[[], Sequence[OpsNotice]] | None = None
    """What IT must act on (a stale or failed backup, a certificate about to lapse), shown to administrators on the
    console: a small deployment often has no Prometheus to read ``/metrics``. Built by the composition root."""
    extra: dict[str, object] = field(default_factory=dict)
    feed: AlertFeed = field(init=False)

    def __post_init__(self) -> None:
        self.feed = AlertFeed(self.backend.alerts_version, interval_s=self.poll_interval_s)
