"""What every incident module shares: the home being planned, its random stream, and the moments incidents start.

An incident kind is a pair (moment, plan): the moment draws when it could start (``None``: not on that day), the
plan function writes the incident and its device effects into the :class:`~firmware_sim.plan.Plan`. Draws happen
in a fixed order (the moment first, for every kind of its group), so a seed gives byte-identical output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from firmware_sim.models import DAY_MS, MINUTE_MS, HomeSpec, Incident, State
from firmware_sim.plan import Plan

AWAKE: Final = frozenset({State.HOME, State.SITTING})


def m(minutes: float) -> int:
    """Minutes as whole milliseconds."""
    return int(minutes * MINUTE_MS)


@dataclass(slots=True)
class Context:
    """The home being planned, its random stream and its period."""

    spec: HomeSpec
    rng: np.random.Generator
    start_ms: int
    days: int

    @property
    def devices(self) -> dict[str, str]:
        """Device kind → device id of this home."""
        return self.spec.devices

    @property
    def end_ms(self) -> int:
        """End of the simulated period."""
        return self.start_ms + self.days * DAY_MS

    def day0(self, day: int) -> int:
        """Local midnight starting ``day``."""
        return self.start_ms + day * DAY_MS

    def add(
        self,
        plan: Plan,
        kind: str,
        a: int,
        b: int,
        *,
        expect: tuple[str, ...] = (),
        forbid: tuple[str, ...] = (),
        device: str | None = None,
        notes: str = "",
    ) -> None:
        """Record one ground-truth incident ``[a, b)`` of ``kind``, numbered in the order planned."""
        iid = f"{self.spec.site}-{len(plan.incidents) + 1:03d}"
        plan.incidents.append(
            Incident(
                id=iid,
                site=self.spec.site,
                type=kind,
                start_ms=a,
                end_ms=b,
                expect=expect,
                forbid=forbid,
                device=device,
                notes=notes,
            )
        )

    def help_arrives(self, plan: Plan, t: int) -> int:
        """Help answers a call at ``t``: a neighbour or carer opens the door 10–30 min later and leaves again."""
        help_at = t + m(self.rng.uniform(10, 30))
        plan.door_pulses += [help_at, help_at + m(self.rng.uniform(20, 60))]
        return help_at


Moment = Callable[[Context, Plan, int], int | None]
"""When on ``day`` an incident of a kind could start (drawn from the context's random stream), or None."""
Planned = Callable[[Context, Plan, int, int], bool]
"""Plan the incident starting at the moment ``t`` of ``day``; False if it cannot happen there."""


def awake_at_home(ctx: Context, plan: Plan, day: int) -> int | None:
    """A random time between 09:00 and 19:00 at which the elder is up at home (and still is 30 min later)."""
    day0 = ctx.day0(day)
    for _ in range(40):
        t = day0 + m(ctx.rng.uniform(9 * 60, 19 * 60))
        if plan.state_at(t) in AWAKE and plan.state_at(t + m(30)) in AWAKE | {State.SITTING, State.HOME}:
            return t
    return None


def cooking(ctx: Context, plan: Plan, day: int) -> int | None:
    """5–15 min into one of the day's kitchen spells after 09:00."""
    day0 = ctx.day0(day)
    kitchen = [pt for pt in plan.points if pt[1] == State.KITCHEN and day0 + m(9 * 60) <= pt[0] < day0 + DAY_MS]
    if not kitchen:
        return None
    return kitchen[int(ctx.rng.integers(len(kitchen)))][0] + m(ctx.rng.uniform(5, 15))


def at_night(ctx: Context, plan: Plan, day: int) -> int | None:
    """A time between 01:00 and 04:00 (drawn for every night-group kind, whether it uses it or not)."""
    return ctx.day0(day) + m(ctx.rng.uniform(60, 240))


def any_time(ctx: Context, plan: Plan, day: int) -> int | None:
    """Any time of the day (device incidents)."""
    return ctx.day0(day) + m(ctx.rng.uniform(0, 24 * 60))


@dataclass(frozen=True, slots=True)
class Kind:
    """An incident kind: when it can start, what it plans, and how often it is drawn relative to the others."""

    moment: Moment
    plan: Planned
    weight: float
