"""Passwords (argon2id), signed session cookies, CSRF tokens and the login rate limit."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SESSION_COOKIE = "ec_session"
LANG_COOKIE = "lang"

_HASHER = PasswordHasher()
# Verifying against a dummy hash when the account does not exist keeps the timing the same for both cases.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash with a random salt."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; constant work whether or not the account exists."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Session:
    """The content of a session cookie."""

    user_id: str
    csrf: str
    expires_s: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionSigner:
    """HMAC-SHA256 signed, expiring session tokens (the cookie holds no secret besides its signature)."""

    def __init__(self, *, secret: bytes, ttl_s: int = 12 * 3600, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("session secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"eldercare-session\x00" + secret).digest()
        self.ttl_s = ttl_s
        self._clock = clock

    def _sig(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user_id: str) -> tuple[str, Session]:
        """A fresh session (with a fresh CSRF token) and its cookie value."""
        session = Session(user_id=user_id, csrf=secrets.token_urlsafe(24), expires_s=int(self._clock()) + self.ttl_s)
        body = _b64(json.dumps({"u": session.user_id, "c": session.csrf, "e": session.expires_s}).encode())
        return f"{body}.{self._sig(body)}", session

    def read(self, token: str | None) -> Session | None:
        """The session of a cookie value, or None if it is missing, forged or expired."""
        if not token:
            return None
        body, dot, sig = token.partition(".")
        if not dot or not hmac.compare_digest(sig, self._sig(body)):
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(user_id=str(raw["u"]), csrf=str(raw["c"]), expires_s=int(raw["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires_s > self._clock() else None


def csrf_ok(session: Session, submitted: str | None) -> bool:
    """True if a form field / header carries the session's CSRF token."""
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


class LoginLimiter:
    """At most ``max_failures`` failed logins per account and per client address in a sliding window."""

    def __init__(
        self, *, max_failures: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        wait = 0.0
        for key in keys:
            q = self._recent(key)
            if len(q) >= self.max_failures:
                wait = max(wait, q[0] + self.window_s - self._clock())
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        """Record a failed attempt under each key."""
        now = self._clock()
        for key in keys:
            self._recent(key).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of an account after a successful login."""
        for key in keys:
            self._failures.pop(key, None)
