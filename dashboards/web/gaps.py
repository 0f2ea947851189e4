"""Gaps the console must show: escalation steps nobody would receive, and what IT must act on.

Escalation: no street or community duty worker. For administrators: a stale or failed backup, a certificate about
to lapse (built by the composition root).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alerts.scope import Scope
from alerts.views import Node, Role
from dashboards.context import AppContext, OpsNotice

_LOG = logging.getLogger(__name__)


def escalation_gap(ctx: AppContext, scope: Scope) -> list[Node]:
    """Streets and communities of ``scope`` (and above it) with no active worker to escalate to.

    Escalation of an unacknowledged critical alert goes to the street's staff, of a warning to the community's
    duty officer; without them the alert service falls back to whoever else is notified, so the officer on duty
    must know the step is missing.
    """
    tree = ctx.backend.hierarchy(scope)
    staffed = {(w.role, w.scope) for w in ctx.backend.accounts(Scope("all"))}
    gaps = [s for s in tree.streets if (Role.STREET, s.id) not in staffed]
    gaps += [c for c in tree.communities if (Role.COMMUNITY_DUTY, c.id) not in staffed]
    return gaps


def warn_at_startup(ctx: AppContext) -> None:
    """Log one warning per missing escalation target (called once when the app is built)."""
    try:
        streets = {s.id for s in ctx.backend.hierarchy(Scope("all")).streets}
        for node in escalation_gap(ctx, Scope("all")):
            level = "street" if node.id in streets else "community"
            _LOG.warning(
                "escalation gap: no active %s worker for %s (%s); unacknowledged alerts there escalate to nobody new",
                level, node.id, node.name,
            )  # fmt: skip
    except Exception:  # noqa: BLE001 - a start-up hint must never stop the console from starting
        _LOG.debug("escalation gap check failed", exc_info=True)


def operations_notices(ctx: AppContext, role: Role) -> Sequence[OpsNotice]:
    """What IT must act on, for an administrator (nobody else can: the backups and certificates are theirs)."""
    if role is not Role.ADMIN or ctx.operations is None:
        return ()
    try:
        return ctx.operations()
    except Exception:  # noqa: BLE001 - a hint for IT must never cost the console page
        _LOG.warning("operations check failed", exc_info=True)
        return ()
