"""Families (监护人 / 子女) told about life-safety alerts through apprise, only with recorded consent.

A guardian receives the alert's type, the time and a signed read-only status link for their elder (no one-tap
actions: families do not change an alert's state). Without consent nothing is sent, and nothing is queued.

Tokens are itsdangerous ``URLSafeSerializer`` strings (HMAC, salt ``eldercare.family``, so a one-tap link's token
signed with the same secret is never a family token) of ``{"g": guardian_id, "r": resident_id, "e": expires_ms}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer

from alerts.labels import ALERT_TYPES, label
from alerts.notify import Message, Notifier, describe_url
from alerts.privacy import mask_contact
from alerts.store.guardians import Guardian

_LOG = logging.getLogger(__name__)
_SALT = "eldercare.family"
_TZ = ZoneInfo("Asia/Shanghai")


class GuardianLinkError(Exception):
    """Raised when a family status link is malformed, forged or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GuardianClaim:
    """What a valid family link grants: read-only status of one resident, for one guardian."""

    guardian_id: int
    resident_id: str
    expires_ms: int


class GuardianLinks:
    """Signs and checks family status links (``{base_url}/family/{token}``), valid for ``ttl_s`` (7 days)."""

    def __init__(self, *, secret: bytes, base_url: str, ttl_s: int = 7 * 86400) -> None:
        if len(secret) < 16:
            raise ValueError("link secret must be at least 16 bytes (set ELDERCARE_LINK_SECRET)")
        self._serializer = URLSafeSerializer(secret, salt=_SALT)
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s

    def token(self, *, guardian_id: int, resident_id: str, now_ms: int) -> str:
        """A fresh read-only link token."""
        token: str = self._serializer.dumps({"g": guardian_id, "r": resident_id, "e": now_ms + self.ttl_s * 1000})
        return token

    def url(self, token: str) -> str:
        """The page a guardian opens."""
        return f"{self.base_url}/family/{token}"

    def verify(self, token: str, *, now_ms: int) -> GuardianClaim:
        """The claim of a valid token; :class:`GuardianLinkError` otherwise."""
        if not token or len(token) > 1024:
            raise GuardianLinkError("malformed")
        try:
            data: Any = self._serializer.loads(token)
        except BadSignature:
            raise GuardianLinkError("bad signature") from None
        try:
            claim = GuardianClaim(int(data["g"]), str(data["r"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            raise GuardianLinkError("malformed") from None
        if claim.expires_ms < now_ms:
            raise GuardianLinkError("expired")
        return claim


class GuardianSource(Protocol):
    """Where the consenting guardians of a home come from (``alerts.store.guardians.GuardianStore``)."""

    def to_notify(self, site: str) -> list[Guardian]:
        """Active guardians with recorded consent of the residents at ``site``."""
        ...


def family_message(*, alert_type: str, raised_ms: int, resident_name: str, url: str, lang: str = "zh") -> Message:
    """The notification text for a guardian: what happened, when, that staff are on it, and the status link."""
    when = dt.datetime.fromtimestamp(raised_ms / 1000, tz=_TZ).strftime("%m-%d %H:%M")
    what = label(ALERT_TYPES, alert_type, lang)
    if lang == "en":
        return Message(
            title=f"{resident_name}: {what} at {when}",
            body=f"A {what} alert for {resident_name} was raised at {when}. Community staff have been notified and "
            f"are handling it. Status (read only): {url}",
        )
    return Message(
        title=f"【安全守护】{resident_name} {what}",
        body=f"{when} 您的家人{resident_name}触发「{what}」告警，社区工作人员已收到并正在处理。状态（只读）：{url}",
    )


class GuardianNotifier:
    """Sends life-safety alerts to consenting guardians through the same apprise notifier as staff."""

    def __init__(self, *, source: GuardianSource, links: GuardianLinks, notifier: Notifier) -> None:
        self.source = source
        self.links = links
        self.notifier = notifier

    async def notify(
        self, *, site: str, alert_type: str, raised_ms: int, resident_name: str, now_ms: int
    ) -> list[tuple[Guardian, str, bool]]:
        """Tell every consenting guardian of ``site``; returns ``(guardian, target, ok)`` per channel."""
        guardians: Sequence[Guardian] = await asyncio.to_thread(self.source.to_notify, site)
        sent: list[tuple[Guardian, str, bool]] = []
        for g in guardians:
            if not g.consent or not g.active:
                continue  # defence in depth: the source already filters
            url = self.links.url(self.links.token(guardian_id=g.id, resident_id=g.resident_id, now_ms=now_ms))
            url += "?lang=en" if g.lang == "en" else ""  # the page opens in the guardian's language
            message = family_message(
                alert_type=alert_type, raised_ms=raised_ms, resident_name=resident_name, url=url, lang=g.lang
            )
            for channel in g.channels:
                try:
                    delivery = await self.notifier.send(url=channel, message=message)
                    sent.append((g, delivery.target, delivery.ok))
                except Exception:  # noqa: BLE001 - one family channel failing never stops the staff's alert
                    target = describe_url(channel)[1]
                    _LOG.warning("guardian %s: delivery to %s failed", g.id, mask_contact(target), exc_info=True)
                    sent.append((g, target, False))
        return sent
