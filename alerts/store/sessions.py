"""Console sessions kept server-side, so logout, password changes and deactivation end them at once.

The cookie holds a random token; the table holds only its SHA-256 (a stolen database does not hand out
sessions). Each row carries the fingerprint of the account's credentials when it was issued; the console
compares it on every request, so any change of password, role or area (from any path) ends the session.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import BigInteger, Engine, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.store.tables import Base


class SessionRow(Base):
    """One console session (``id`` is the SHA-256 of the cookie token)."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger, index=True)


@dataclass(frozen=True, slots=True)
class StoredSession:
    """What the server knows about a session."""

    key: str
    user_id: str
    csrf: str
    fingerprint: str
    created_ms: int
    expires_ms: int


def session_key(token: str) -> str:
    """The stored id of a cookie token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SqlSessionStore:
    """Sessions in the alert store's database (shared by every console process)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, session: StoredSession) -> None:
        """Store a new session and drop expired ones."""
        with Session(self._engine) as s, s.begin():
            s.execute(delete(SessionRow).where(SessionRow.expires_ms <= session.created_ms))
            s.add(
                SessionRow(
                    id=session.key, user_id=session.user_id, csrf=session.csrf, fingerprint=session.fingerprint,
                    created_ms=session.created_ms, expires_ms=session.expires_ms,
                )
            )  # fmt: skip

    def get(self, key: str) -> StoredSession | None:
        """The session stored under ``key`` (expired ones included; the caller checks the time)."""
        with Session(self._engine) as s:
            row = s.get(SessionRow, key)
            if row is None:
                return None
            return StoredSession(row.id, row.user_id, row.csrf, row.fingerprint, row.created_ms, row.expires_ms)

    def delete(self, key: str) -> None:
        """End one session."""
        with Session(self._engine) as s, s.begin():
            s.execute(delete(SessionRow).where(SessionRow.id == key))

    def delete_user(self, user_id: str) -> int:
        """End every session of a user; returns how many there were."""
        with Session(self._engine) as s, s.begin():
            n = len(s.scalars(select(SessionRow.id).where(SessionRow.user_id == user_id)).all())
            s.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
            return n
