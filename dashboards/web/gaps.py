"""Configuration gaps the console must show: escalation steps nobody would receive (no street worker, …)."""

from __future__ import annotations

import logging

from alerts.scope import Scope
from alerts.views import Node, Role
from dashboards.context import AppContext

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
