"""Server-side console sessions: issue on login, check on every request, revoke on logout and account changes.

The cookie carries a random token only; the store keeps its hash with the user, the CSRF token, the expiry and
the fingerprint of the account's credentials (role, area, password hash) at login. A session ends when it is
deleted (logout, deactivation, password reset through the console) or when the account no longer matches the
fingerprint (a password, role or area changed by any path, e.g. a registry import).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from alerts.store.sessions import StoredSession, session_key
from alerts.views import Account


class SessionStore(Protocol):
    """Where sessions live: the alert store's table in production, a dict in tests and demos."""

    def put(self, session: StoredSession) -> None:
        """Store a new session."""
        ...

    def get(self, key: str) -> StoredSession | None:
        """The session under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """End one session."""
        ...

    def delete_user(self, user_id: str) -> int:
        """End every session of a user."""
        ...


class MemorySessionStore:
    """Sessions in this process only (they end on restart); bounded, the oldest go first."""

    def __init__(self, *, max_sessions: int = 10_000) -> None:
        self._rows: OrderedDict[str, StoredSession] = OrderedDict()
        self.max_sessions = max_sessions

    def put(self, session: StoredSession) -> None:
        """Store a new session."""
        self._rows[session.key] = session
        while len(self._rows) > self.max_sessions:
            self._rows.popitem(last=False)

    def get(self, key: str) -> StoredSession | None:
        """The session under ``key``."""
        return self._rows.get(key)

    def delete(self, key: str) -> None:
        """End one session."""
        self._rows.pop(key, None)

    def delete_user(self, user_id: str) -> int:
        """End every session of a user."""
        keys = [k for k, v in self._rows.items() if v.user_id == user_id]
        for k in keys:
            del self._rows[k]
        return len(keys)


@dataclass(frozen=True, slots=True)
class Session:
    """A live session of the request."""

    user_id: str
    csrf: str
    expires_s: int
    fingerprint: str
    token: str


def fingerprint(account: Account) -> str:
    """Changes whenever the account's password, role or area changes (never reveals the hash)."""
    material = "\x00".join((account.id, account.role.value, account.scope, account.password_hash))
    return hashlib.sha256(material.encode()).hexdigest()


class SessionManager:
    """Issues, reads and revokes sessions in a :class:`SessionStore`."""

    def __init__(self, store: SessionStore, *, ttl_s: int = 12 * 3600, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, account: Account) -> tuple[str, Session]:
        """A fresh session (fresh token, fresh CSRF token) for ``account``."""
        token = secrets.token_urlsafe(32)
        now_ms = int(self._clock() * 1000)
        stored = StoredSession(
            key=session_key(token), user_id=account.id, csrf=secrets.token_urlsafe(24),
            fingerprint=fingerprint(account), created_ms=now_ms, expires_ms=now_ms + self.ttl_s * 1000,
        )  # fmt: skip
        self.store.put(stored)
        return token, self._session(stored, token)

    @staticmethod
    def _session(stored: StoredSession, token: str) -> Session:
        return Session(stored.user_id, stored.csrf, stored.expires_ms // 1000, stored.fingerprint, token)

    def read(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (missing, unknown, revoked or expired)."""
        if not token or len(token) > 256:
            return None
        stored = self.store.get(session_key(token))
        if stored is None:
            return None
        if stored.expires_ms <= self._clock() * 1000:
            self.store.delete(stored.key)
            return None
        return self._session(stored, token)

    def matches(self, session: Session, account: Account) -> bool:
        """True if the account is still what it was at login; otherwise the session is ended."""
        if session.fingerprint == fingerprint(account):
            return True
        self.revoke(session.token)
        return False

    def revoke(self, token: str) -> None:
        """End one session (logout)."""
        self.store.delete(session_key(token))

    def revoke_user(self, user_id: str) -> int:
        """End every session of a user (deactivation, password reset)."""
        return self.store.delete_user(user_id)
