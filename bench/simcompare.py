"""Simulator versus real homes: the same behaviour statistics on both (``eldercare sim-compare``).

The real side is the development set (:func:`detection.realdata.compare.real_home_stats`, the held-out home left
out); the simulated side is a ``normal``-mix run of :mod:`firmware_sim` whose messages go through the same
summariser (:mod:`detection.realdata.compare`). Only homes whose elder lives alone and is not bedbound are
compared (the real residents all live alone and walk).
"""

from __future__ import annotations

from collections.abc import Callable

from detection.realdata.compare import (
    HomeStats,
    hour_table,
    older_adult_stats,
    read_wire,
    real_home_stats,
    summarise,
    table,
)
from firmware_sim.models import TZ_OFFSET_MS
from firmware_sim.scenario import generate


def simulated_home_stats(
    *, homes: int = 20, days: int = 28, seed: int = 1, progress: Callable[[str], None] | None = None
) -> list[HomeStats]:
    """Summaries of the simulated homes of one run (elders living alone, not bedbound)."""
    sim = generate(homes=homes, days=days, seed=seed, mix="normal", mattress_cadence_s=60)
    keep = {s.site for s in sim.homes if s.profile.living == "alone" and not s.profile.bedbound}
    rooms: dict[str, str] = {}
    sites = sim.registry.get("sites", [])
    assert isinstance(sites, list)
    for site in sites:
        for dev in site.get("devices", []):
            room = dev.get("room")
            if room:
                rooms[str(dev["device"])] = str(room)

    def on_day(day: int, n: int) -> None:
        if progress is not None:
            progress(f"simulated day {day + 1}/{days}: {n:,} messages")

    msgs = sim.messages(on_day=on_day, sites=keep)
    wires = read_wire(msgs, rooms)
    return [
        summarise(site, wires[site], tz_offset_ms=TZ_OFFSET_MS, start_ms=sim.start_ms, end_ms=sim.end_ms)
        for site in sorted(keep)
        if site in wires
    ]


def report(*, homes: int = 20, days: int = 28, seed: int = 1, progress: Callable[[str], None] | None = None) -> str:
    """The comparison as Markdown: the statistics table, then the activity share per hour of day."""
    real = real_home_stats()
    sim = simulated_home_stats(homes=homes, days=days, seed=seed, progress=progress)
    head = (
        f"Real: {len(real)} development homes ({', '.join(h.site for h in real)}), {sum(h.days for h in real)} days. "
        f"Simulated: {len(sim)} homes (normal mix, seed {seed}, living alone, not bedbound), "
        f"{sum(h.days for h in sim)} days."
    )
    parts = [head, table(real, sim), hour_table(real, sim)]
    older = older_adult_stats()
    if older is not None:
        parts += [
            f"Real: the older adult's home ({older.site}, HomeAssist Home1, {older.days} days; held out for detection,"
            " no absence labels) against the same simulated homes.",
            table([older], sim),
            hour_table([older], sim),
        ]
    return "\n\n".join(parts)
