"""Signed, expiring, single-purpose one-tap links for the phone page.

Tokens are itsdangerous ``URLSafeTimedSerializer`` strings (HMAC, salt ``eldercare.link``) of the claim
``{"a": alert_id, "w": worker_id, "x": action, "e": expires_ms, "n": nonce}``; the expiry checked is ``e``
(event clock, injectable), so a token minted from another can be capped at its parent's expiry.
``x`` is one of acknowledge, en_route, on_site, resolve, or ``view`` (the phone page itself, which then
offers fresh single-purpose action tokens). The nonce makes each link usable once; a second use is
answered with the first result (idempotent), enforced by the store's ``link_uses`` table.
"""

from __future__ import annotations

import secrets
from typing import Any, Final, Literal

import msgspec
from itsdangerous import BadSignature, URLSafeTimedSerializer

from alerts.lifecycle import Action
from alerts.store.errors import LinkError

LinkAction = Literal["view", "acknowledge", "en_route", "on_site", "resolve"]
LINK_ACTIONS: Final[tuple[LinkAction, ...]] = ("view", "acknowledge", "en_route", "on_site", "resolve")
_SALT: Final = "eldercare.link"


class LinkClaim(msgspec.Struct, frozen=True):
    """What a verified link allows: one action on one alert, by one worker, until ``e``."""

    a: int
    w: str
    x: LinkAction
    e: int
    n: str

    @property
    def alert_id(self) -> int:
        """Alert the link is for."""
        return self.a

    @property
    def worker_id(self) -> str:
        """Worker the link was sent to (the actor recorded when it is used)."""
        return self.w

    @property
    def action(self) -> LinkAction:
        """The single purpose of the link."""
        return self.x

    @property
    def lifecycle_action(self) -> Action | None:
        """The lifecycle action, or None for ``view``."""
        return None if self.x == "view" else Action(self.x)

    @property
    def expires_ms(self) -> int:
        """Expiry, UTC epoch ms."""
        return self.e

    @property
    def nonce(self) -> str:
        """Unique id of this link."""
        return self.n


class LinkSigner:
    """Creates and verifies one-tap link tokens with a deployment secret (at least 16 bytes)."""

    def __init__(self, *, secret: bytes, base_url: str, ttl_s: int = 2 * 3600) -> None:
        if len(secret) < 16:
            raise ValueError("link secret must be at least 16 bytes (set ELDERCARE_LINK_SECRET)")
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.base_url = base_url.rstrip("/")
        self.ttl_s = ttl_s

    def token(
        self,
        *,
        alert_id: int,
        worker_id: str,
        action: LinkAction,
        now_ms: int,
        ttl_s: int | None = None,
        expires_ms: int | None = None,
    ) -> str:
        """A fresh token for one action, expiring after ``ttl_s`` or at ``expires_ms`` if that is sooner."""
        if action not in LINK_ACTIONS:
            raise LinkError("purpose", f"unknown action {action!r}")
        expiry = now_ms + (ttl_s or self.ttl_s) * 1000
        if expires_ms is not None:
            expiry = min(expiry, expires_ms)
        claim = {"a": alert_id, "w": worker_id, "x": action, "e": expiry, "n": secrets.token_urlsafe(9)}
        token: str = self._serializer.dumps(claim)
        return token

    def url(self, token: str) -> str:
        """The phone-page URL for a token (the dashboards mount ``/m/{token}``)."""
        return f"{self.base_url}/m/{token}"

    def verify(self, token: str, *, now_ms: int, expect: LinkAction | None = None) -> LinkClaim:
        """Check signature, expiry and (optionally) purpose; raise :class:`LinkError` otherwise."""
        if not token or len(token) > 1024:
            raise LinkError("malformed")
        try:
            raw: Any = self._serializer.loads(token)
        except BadSignature:
            raise LinkError("signature") from None
        try:
            claim = msgspec.convert(raw, type=LinkClaim)
        except msgspec.ValidationError:
            raise LinkError("malformed") from None
        if claim.e <= now_ms:
            raise LinkError("expired", f"expired at {claim.e}", alert_id=claim.a)
        if expect is not None and claim.x != expect:
            raise LinkError("purpose", f"link is for {claim.x}, not {expect}")
        return claim
