"""Away notices (外出报备) on the console: what a home's section shows, the badges, and the refusal messages.

The notices live in :mod:`alerts.store.away` (scope-free); every route checks the home is in the caller's scope
(:meth:`alerts.queries.StoreBackend.site_in_scope`) before it reads or writes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.store.away import AwayNotice, AwayNoticeError, AwayStore
from dashboards.context import AppContext
from dashboards.i18n import Translator


def away_store(ctx: AppContext) -> AwayStore:
    """The notices in the console's alert store."""
    return AwayStore(ctx.backend.store)


def refusal(t: Translator, exc: AwayNoticeError) -> str:
    """Why a notice was refused, in the request's language."""
    return t(f"away.error.{exc.code}", id=exc.other) if exc.code == "overlap" else t(f"away.error.{exc.code}")


@dataclass(frozen=True, slots=True)
class HomeAway:
    """A home's notices as its section shows them: the one in force, the planned ones, the recent history."""

    active: AwayNotice | None
    planned: tuple[AwayNotice, ...]
    recent: tuple[AwayNotice, ...]

    @classmethod
    def of(cls, notices: Iterable[AwayNotice], *, now_ms: int) -> HomeAway:
        """Sort a home's notices (newest first, from :meth:`AwayStore.of_site`) for its section."""
        notices = list(notices)
        active = next((n for n in notices if n.active_at(now_ms)), None)
        planned = sorted((n for n in notices if n.ended_ms is None and n.starts_ms > now_ms), key=lambda n: n.starts_ms)
        recent = [n for n in notices if n is not active and n not in planned][:5]
        return cls(active, tuple(planned), tuple(recent))


def away_sites(ctx: AppContext, now_ms: int) -> dict[str, AwayNotice]:
    """Homes with a notice in force → the notice (one query; callers show badges only on rows already in scope)."""
    return {n.site: n for n in away_store(ctx).active(now_ms)}


def home_away(ctx: AppContext, site: str) -> HomeAway:
    """A home's notices as its section shows them (the caller has checked the home is in scope)."""
    return HomeAway.of(away_store(ctx).of_site(site, limit=20), now_ms=ctx.clock())
