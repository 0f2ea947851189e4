"""Away notices (外出报备): a worker recorded that the elder is away until a time (staying with family, in hospital).

While a notice is in force and the home shows nobody living in it, the home's behavioural alerts (inactivity, not
up, night bed exit, night door, out and not back, vital-sign trends) are held: nobody is paged or sent out for an
elder known to be elsewhere. Life-safety alerts (SOS, fall, smoke, gas, critical vital signs) and device health are
never held.

A notice is not trusted blindly: when the home shows the elder back (the home was seen empty under the notice, then
someone is inside for longer than a visit, ``visit_max_min``, or lies down in bed), the notice stops holding at once
and :meth:`detection.engine.Engine.ended_notices` reports it, so the live backend ends it in the store. A visitor
looking after the empty home (post, plants; minutes, by day) does not end it. Days under a notice with the home empty
are not learned from (a stay away is not the routine).

The store is the source of truth: the backend passes the active notices in with
:meth:`~detection.engine.Engine.set_away_notices` every few seconds; the engine keeps only what detection needs, in
:class:`~detection.state.HomeState` (so a snapshot carries it over a restart).
"""

from __future__ import annotations

from typing import Final

from detection.config import DetectConfig
from detection.detectors.base import MIN_MS
from detection.presence import INSIDE
from detection.state import NEVER, HomeState, notice_holds

EMPTY_GAP_MIN: Final = 120.0
"""No sign of anyone inside for this long under a notice: the home was empty (also where no door contact says so)."""


def apply(home: HomeState, notice: tuple[int, int, int] | None) -> None:
    """Set the home's notice ``(id, from_ms, until_ms)``, or clear it (ended, expired, withdrawn) with None."""
    if notice is None:
        if home.notice_id:
            home.notice_id = 0
            home.notice_from_ms = home.notice_until_ms = NEVER
            home.notice_in_ms = home.notice_back_ms = NEVER
            home.notice_empty = False
        return
    notice_id, start, until = notice
    if notice_id != home.notice_id:
        home.notice_id = notice_id
        home.notice_in_ms = home.notice_back_ms = NEVER
        home.notice_empty = home.away  # registered after the elder left: the home is already empty
    home.notice_from_ms, home.notice_until_ms = start, until  # the return date may be edited


def observe(config: DetectConfig, home: HomeState, flags: int, t: int, prev_inside_ms: int) -> None:
    """After presence tracking: note an empty home under the notice, and a return that is more than a visit."""
    if not home.notice_id or not notice_holds(home, t):
        return
    if home.away:
        home.notice_empty = True
        home.notice_in_ms = NEVER
        return
    if not flags & INSIDE:
        return
    if prev_inside_ms == NEVER or t - prev_inside_ms >= EMPTY_GAP_MIN * MIN_MS:
        if prev_inside_ms != NEVER or t - home.notice_from_ms >= EMPTY_GAP_MIN * MIN_MS:
            home.notice_empty = True
        home.notice_in_ms = t  # someone inside after an empty spell: a visit, or the elder back
    elif home.notice_in_ms == NEVER:
        home.notice_in_ms = t
    if home.notice_empty and (home.in_bed or t - home.notice_in_ms >= config.visit_max_min * MIN_MS):
        home.notice_back_ms = t
