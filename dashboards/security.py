"""Passwords (argon2id), CSRF tokens and the login rate limits (sessions: :mod:`dashboards.sessions`)."""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Protocol

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


class HasCsrf(Protocol):
    """Anything carrying a session's CSRF token."""

    @property
    def csrf(self) -> str:
        """The token forms and API writes must echo."""
        ...


def csrf_ok(session: HasCsrf, submitted: str | None) -> bool:
    """True if a form field / header carries the session's CSRF token."""
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


class LoginLimiter:
    """At most ``max_failures`` failed logins per key (a client address) in a sliding window.

    Keyed on the real peer address (uvicorn honours ``X-Forwarded-For`` only from configured trusted proxies).
    At most ``max_keys`` keys are tracked; the least recently failed go first, so a flood of addresses cannot
    grow memory without bound.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 300.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        wait = 0.0
        for key in keys:
            q = self._recent(key)
            if len(q) >= self.max_failures:
                wait = max(wait, q[0] + self.window_s - self.clock())
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        """Record a failed attempt under each key."""
        now = self.clock()
        for key in keys:
            q = self._failures.pop(key, None) or deque(maxlen=self.max_failures * 2)
            q.append(now)
            self._failures[key] = q
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of a key after a successful login."""
        for key in keys:
            self._failures.pop(key, None)


class AccountThrottle:
    """Per-account progressive delay: slows guessing without letting anyone lock an officer out.

    The first ``free_failures`` failures cost nothing; after that each attempt must wait
    ``base_delay_s * 2**(failures - free_failures)`` seconds after the last failure, capped at ``max_delay_s``.
    Refused (throttled) attempts are not failures, so an attacker cannot push the wait beyond the cap, and the
    owner's right password works again at most ``max_delay_s`` after the attacker's last guess. Failures are
    forgotten after ``forget_after_s`` without one, or on a successful login. Bounded like :class:`LoginLimiter`.
    """

    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay_s: float = 2.0,
        max_delay_s: float = 60.0,
        forget_after_s: float = 3600.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def _get(self, key: str) -> tuple[int, float]:
        count, last = self._state.get(key, (0, 0.0))
        if count and self.clock() - last > self.forget_after_s:
            self._state.pop(key, None)
            return 0, 0.0
        return count, last

    def delay_s(self, failures: int) -> float:
        """The wait imposed after ``failures`` consecutive failures."""
        if failures < self.free_failures:
            return 0.0
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (failures - self.free_failures)))

    def retry_after(self, key: str) -> int:
        """Seconds until the account may try again (0 = now)."""
        count, last = self._get(key)
        wait = last + self.delay_s(count) - self.clock() if count else 0.0
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, key: str) -> None:
        """Record a failed attempt of an account."""
        count, _ = self._get(key)
        self._state.pop(key, None)
        self._state[key] = (count + 1, self.clock())
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget an account's failures after a successful login."""
        self._state.pop(key, None)
