"""Home gateways' broker accounts: which are revoked, and each one's key generation.

A gateway's MQTT password is derived from the deployment secret, the site and a **generation**
(:func:`gateway.provisioning.gateway_password`), so nothing stores a password. Revoking a gateway (a box stolen,
lost or replaced) takes its account off the broker and moves its generation on: the box's old password never
works again, and a new box for the same home gets the new one when the home is reinstated. One table, created
by migration ``0008_gateway_accounts``; every change is audited with who made it and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import BigInteger, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from alerts.store.audit_log import By, add_audit
from alerts.store.tables import Base, Site

if TYPE_CHECKING:
    from alerts.store.repository import AlertStore


class GatewayAccountRow(Base):
    """A gateway account that was ever revoked (no row: generation 0, active)."""

    __tablename__ = "gateway_accounts"
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    changed_ms: Mapped[int] = mapped_column(BigInteger)


class GatewayAccount(msgspec.Struct, frozen=True):
    """One home gateway's account as the broker should know it."""

    site: str
    generation: int = 0
    revoked_ms: int | None = None
    reason: str = ""

    @property
    def active(self) -> bool:
        """True unless revoked."""
        return self.revoked_ms is None


def _account(site: str, row: GatewayAccountRow | None) -> GatewayAccount:
    """A home's account state from its row (none: never revoked, generation 0)."""
    if row is None:
        return GatewayAccount(site=site)
    return GatewayAccount(site=site, generation=row.generation, revoked_ms=row.revoked_ms, reason=row.reason)


class GatewayAccounts:
    """Revocation and key generations of the home gateways' broker accounts."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store

    def all(self) -> list[GatewayAccount]:
        """Every registered home (the registry's sites) with its account state, by site id."""
        with self.store.read_session() as s:
            sites = list(s.scalars(select(Site.id).order_by(Site.id)))
            rows = {r.site: r for r in s.scalars(select(GatewayAccountRow))}
        return [_account(site, rows.get(site)) for site in sites]

    def get(self, site: str) -> GatewayAccount | None:
        """One home's account state; None if the site is not registered."""
        with self.store.read_session() as s:
            if s.get(Site, site) is None:
                return None
            return _account(site, s.get(GatewayAccountRow, site))

    def revoke(self, site: str, *, reason: str, actor: str, now_ms: int) -> GatewayAccount:
        """Take the gateway off the broker and move its key generation on (its current password dies)."""
        with self.store._tx() as s:
            if s.get(Site, site) is None:
                raise KeyError(site)
            row = s.get(GatewayAccountRow, site)
            if row is None:
                row = GatewayAccountRow(site=site, generation=0, revoked_ms=None, reason="", changed_ms=now_ms)
                s.add(row)
            if row.revoked_ms is None:
                row.generation += 1
                row.revoked_ms = now_ms
            row.reason, row.changed_ms = reason, now_ms
            add_audit(
                s,
                By(actor, "cli", now_ms),
                "gateway.revoke",
                "gateway",
                site,
                {"generation": row.generation, "reason": reason},
            )
            return _account(site, row)

    def reinstate(self, site: str, *, actor: str, now_ms: int) -> GatewayAccount:
        """Let the home's gateway back on, with the key generation its revocation started (a new password)."""
        with self.store._tx() as s:
            if s.get(Site, site) is None:
                raise KeyError(site)
            row = s.get(GatewayAccountRow, site)
            if row is None:
                return _account(site, None)
            row.revoked_ms, row.reason, row.changed_ms = None, "", now_ms
            add_audit(s, By(actor, "cli", now_ms), "gateway.reinstate", "gateway", site, {"generation": row.generation})
            return _account(site, row)
