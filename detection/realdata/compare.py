"""Behaviour statistics of homes as seen on the wire: the same summariser for real and simulated homes.

Used to calibrate the simulator on the real development set (``eldercare sim-compare``, docs/simulator.md). Input is
a home's contract messages (``(received_ms, topic, payload)``) and the room of each device; output is the
distributions the detectors live on. Definitions (all in the home's local time; a "day" is a local calendar day):

- **activity**: a ``motion`` event (or a PIR telemetry window with ``count > 0``), an ``open`` / ``close`` of a
  contact or door, a mattress ``in_bed`` / ``out_of_bed``, a call-button event. Wristband steps are left out (the
  real homes have no band). **Inside** activity is everything but the entrance door; **up** activity is inside
  activity outside the bedroom.
- **wake time**: the first up event after 04:00 (before 14:00) that starts a busy spell (:data:`WAKE_BUSY` up
  events within 30 min) that goes on (another up event 30–90 min later): a toilet trip at 04:30 that fires the
  bedroom door, the toilet door and the flush is not getting up;
- **bedtime**: the start of the longest gap of up activity (at least 3 h, no entrance event in it) starting
  18:00–03:00, moved back over short night exits before it; the **night** runs from bedtime to the next wake time;
- **night exits**: clusters (10 min apart) of up activity in the night (a mattress ``out_of_bed`` alone is not
  counted: none of the real homes has a bed-occupancy sensor, so both sides see exits the same way);
- **outings**: a gap of inside activity of at least 15 min holding an entrance-door event, from the first door
  event to the last (or to the first inside event after it when there is only one), at least 10 min long;
- **daytime quiet spells**: gaps between inside events from wake time to bedtime, outings excluded, by the block
  of the day they start in (morning until 12:00, afternoon 12–18, evening from 18:00);
- **firings by hour**: up and entrance activity per hour of the local day (bedroom activity is left out: the real
  bed mats fire all night, the simulated mattress reports only getting in and out);
- **message gaps**: the time between consecutive messages (events, telemetry, heartbeats) of each motion sensor
  and each contact: real Zigbee sensors report on change plus a sparse heartbeat.

Distances: the two-sample Kolmogorov–Smirnov statistic (0 = same distribution, 1 = disjoint) for samples; the
total-variation distance for the 24-hour profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec
import numpy as np

MIN: Final = 60_000
HOUR: Final = 60 * MIN
DAY: Final = 24 * HOUR
WAKE_FROM_MS: Final = 4 * HOUR
WAKE_UNTIL_MS: Final = 14 * HOUR
WAKE_BUSY: Final = 3
"""Up events within :data:`WAKE_BUSY_MS` that make a wake-up (one toilet trip at 05:00 is not getting up)."""
WAKE_BUSY_MS: Final = 30 * MIN
BED_FROM_MS: Final = 18 * HOUR
BED_UNTIL_MS: Final = 27 * HOUR
NIGHT_MIN_MS: Final = 3 * HOUR
EXIT_CLUSTER_MS: Final = 10 * MIN
OUTING_GAP_MS: Final = 15 * MIN
OUTING_MIN_MS: Final = 10 * MIN
QUIET_MIN_MS: Final = 15 * MIN
BLOCKS: Final = (("morning", 0, 12 * HOUR), ("afternoon", 12 * HOUR, 18 * HOUR), ("evening", 18 * HOUR, 30 * HOUR))
ACTIVITY_EVENTS: Final = frozenset({"motion", "open", "close", "in_bed", "out_of_bed", "press", "cancel"})
GAP_KINDS: Final = frozenset({"motion", "door"})


@dataclass(frozen=True, slots=True)
class Activity:
    """One sign of life on the wire: when, which device, in which room, and which event."""

    t: int
    device: str
    room: str
    event: str


@dataclass(slots=True)
class Wire:
    """What the summariser keeps of a home's messages: activity, and message times of motion sensors and contacts."""

    activity: list[Activity] = field(default_factory=list)
    message_times: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """(kind, device) → received times of every message of that device (motion sensors and contacts only)."""


_DEC = msgspec.json.Decoder()


def read_wire(
    messages: Iterable[tuple[int, str, bytes]], rooms: Mapping[str, str], *, entrance: Iterable[str] = ()
) -> dict[str, Wire]:
    """Activity and message times per site from contract messages; ``rooms`` maps device id to its room.

    A device whose room is unknown counts as ``living``; ``entrance`` lists door ids at the entrance when the room
    map does not say so (their room becomes ``entrance``).

    >>> w = read_wire([(1000, "ec/v1/h1/motion/pir1/event", b'{"event":"motion","seq":1,"ts":1000}')], {})
    >>> w["h1"].activity[0].room, w["h1"].message_times[("motion", "pir1")]
    ('living', [1000])
    """
    ent = set(entrance)
    out: dict[str, Wire] = {}
    for t, topic, payload in messages:
        parts = topic.split("/")
        if len(parts) != 6:
            continue
        site, kind, device, mtype = parts[2], parts[3], parts[4], parts[5]
        wire = out.get(site)
        if wire is None:
            wire = out[site] = Wire()
        if kind in GAP_KINDS:
            wire.message_times.setdefault((kind, device), []).append(t)
        if kind not in ("motion", "door", "mattress", "call_button") or mtype not in ("event", "telemetry"):
            continue
        if kind == "mattress" and mtype == "telemetry":
            continue  # occupancy changes come as in_bed / out_of_bed events; telemetry is the heartbeat
        try:
            body = _DEC.decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError):
            continue
        if not isinstance(body, dict):
            continue
        if mtype == "telemetry":
            count = body.get("count")
            if kind != "motion" or not isinstance(count, int) or count <= 0:
                continue
            event = "motion"
        else:
            event = str(body.get("event", ""))
            if event not in ACTIVITY_EVENTS:
                continue
        room = "entrance" if device in ent else rooms.get(device) or ("bedroom" if kind == "mattress" else "living")
        wire.activity.append(Activity(t=t, device=device, room=room, event=event))
    for wire in out.values():
        wire.activity.sort(key=lambda a: a.t)
        for ts in wire.message_times.values():
            ts.sort()
    return out


@dataclass(slots=True)
class HomeStats:
    """One home's behaviour distributions (minutes unless said otherwise)."""

    site: str
    days: int = 0
    wake_min: list[float] = field(default_factory=list)
    """Wake time per day, minutes after local midnight."""
    bed_min: list[float] = field(default_factory=list)
    """Bedtime per day, minutes after the day's local midnight (01:00 the next day is 1500)."""
    night_exits: list[int] = field(default_factory=list)
    outings_per_day: list[int] = field(default_factory=list)
    outing_min: list[float] = field(default_factory=list)
    quiet_longest: dict[str, list[float]] = field(default_factory=dict)
    """Block → longest daytime quiet spell per day."""
    quiet_spells: dict[str, list[float]] = field(default_factory=dict)
    """Block → every daytime quiet spell longer than 15 min."""
    firings_per_day: list[int] = field(default_factory=list)
    by_hour: list[float] = field(default_factory=lambda: [0.0] * 24)
    """Activity outside the bedroom per hour of the local day, summed over the days."""
    gaps_min: dict[str, list[float]] = field(default_factory=dict)
    """``motion`` / ``contact`` → gaps between consecutive messages of one device."""

    @property
    def wake_sd(self) -> float | None:
        """Day-to-day spread of the wake time (standard deviation, min)."""
        return float(np.std(self.wake_min, ddof=1)) if len(self.wake_min) >= 3 else None

    @property
    def wake_iqr(self) -> float | None:
        """Interquartile range of the wake time (min)."""
        if len(self.wake_min) < 3:
            return None
        q1, q3 = np.percentile(self.wake_min, [25, 75])
        return float(q3 - q1)


def _gaps(times: Sequence[int]) -> list[int]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def _count_in(sorted_ts: np.ndarray, a: int, b: int) -> int:
    return int(np.searchsorted(sorted_ts, b, side="left") - np.searchsorted(sorted_ts, a, side="left"))


def wake_time(up: np.ndarray, day0: int) -> int | None:
    """The day's wake time (see the module docstring), or None (away, or never busy before 14:00).

    >>> trip = [5 * HOUR + k * MIN for k in (0, 2, 4)]
    >>> up = np.array([*trip, 7 * HOUR, 7 * HOUR + 5 * MIN, 7 * HOUR + 9 * MIN, 8 * HOUR])
    >>> wake_time(up, 0) // MIN  # 05:00 is a toilet trip: three firings, then sleep
    420
    """
    i = int(np.searchsorted(up, day0 + WAKE_FROM_MS, side="left"))
    while i < up.size and up[i] < day0 + WAKE_UNTIL_MS:
        t = int(up[i])
        if _count_in(up, t, t + WAKE_BUSY_MS + 1) >= WAKE_BUSY and _count_in(
            up, t + WAKE_BUSY_MS + 1, t + 3 * WAKE_BUSY_MS + 1
        ):
            return t
        i += 1
    return None


def bedtime(up: np.ndarray, entrance: np.ndarray, day0: int) -> int | None:
    """Start of the night, or None (see the module docstring).

    The longest up-activity gap (≥ 3 h, no door in it) starting 18:00–03:00, extended back over short night exits
    (a cluster of at most 20 min, from 23:00 on, after a gap of at least 90 min): a toilet trip at 02:00
    does not move the bedtime to 02:05.

    >>> up = np.array([22 * HOUR, 26 * HOUR, 26 * HOUR + 3 * MIN, 31 * HOUR])
    >>> bedtime(up, np.array([], dtype=np.int64), 0) // MIN  # 22:00, not 02:03
    1320
    """
    best: int | None = None
    lo = int(np.searchsorted(up, day0 + BED_FROM_MS, side="left"))
    hi = int(np.searchsorted(up, day0 + BED_UNTIL_MS, side="left"))
    for i in range(lo, min(hi, up.size - 1)):
        a, b = int(up[i]), int(up[i + 1])
        if b - a < NIGHT_MIN_MS or _count_in(entrance, a, b) > 0:
            continue
        if best is None or b - a > int(up[best + 1] - up[best]):
            best = i
    if best is None:
        return None
    i = best
    while True:
        j = i
        while j > 0 and up[j] - up[j - 1] <= EXIT_CLUSTER_MS:
            j -= 1
        if j == 0 or up[i] - up[j] > 20 * MIN:
            break
        a = int(up[j - 1])
        if (
            int(up[j]) < day0 + 23 * HOUR
            or int(up[j]) - a < 90 * MIN
            or a < day0 + BED_FROM_MS
            or _count_in(entrance, a, int(up[j])) > 0
        ):
            break
        i = j - 1
    return int(up[i])


def clusters(ts: Sequence[int], gap_ms: int) -> int:
    """Number of clusters of sorted times, a new cluster after a gap longer than ``gap_ms``.

    >>> clusters([0, 60_000, 3_600_000], 600_000)
    2
    """
    n = 0
    last: int | None = None
    for t in ts:
        if last is None or t - last > gap_ms:
            n += 1
        last = t
    return n


def outings(inside: np.ndarray, entrance: np.ndarray) -> list[tuple[int, int]]:
    """Outings ``(start, end)``: an inside gap ≥ 15 min holding entrance events (module docstring).

    >>> outings(np.array([0, 100 * MIN]), np.array([2 * MIN, 90 * MIN]))
    [(120000, 5400000)]
    """
    out: list[tuple[int, int]] = []
    for a, b in zip(inside.tolist(), inside[1:].tolist(), strict=False):
        if b - a < OUTING_GAP_MS:
            continue
        lo = int(np.searchsorted(entrance, a, side="right"))
        hi = int(np.searchsorted(entrance, b, side="left"))
        if hi <= lo:
            continue
        s, e = int(entrance[lo]), int(entrance[hi - 1])
        if e - s < 5 * MIN:
            e = b
        if e - s >= OUTING_MIN_MS:
            out.append((s, e))
    return out


def summarise(site: str, wire: Wire, *, tz_offset_ms: int, start_ms: int, end_ms: int) -> HomeStats:
    """One home's distributions over the whole local days between ``start_ms`` and ``end_ms``."""
    st = HomeStats(site=site, quiet_longest={b: [] for b, _, _ in BLOCKS}, quiet_spells={b: [] for b, _, _ in BLOCKS})
    local = [
        Activity(t=a.t + tz_offset_ms, device=a.device, room=a.room, event=a.event)
        for a in wire.activity
        if start_ms <= a.t < end_ms
    ]
    inside = np.array([a.t for a in local if a.room != "entrance"], dtype=np.int64)
    up = np.array([a.t for a in local if a.room not in ("entrance", "bedroom")], dtype=np.int64)
    entrance = np.array([a.t for a in local if a.room == "entrance"], dtype=np.int64)
    every = np.array([a.t for a in local], dtype=np.int64)
    awake = np.array([a.t for a in local if a.room != "bedroom"], dtype=np.int64)
    outs = outings(inside, entrance)
    first_day = -(-(start_ms + tz_offset_ms) // DAY) * DAY
    last_day = (end_ms + tz_offset_ms) // DAY * DAY  # exclusive; the last night needs the next morning
    days = list(range(first_day, last_day, DAY))
    wakes = {d: wake_time(up, d) for d in [*days, last_day]}
    for d in days:
        st.days += 1
        n = _count_in(every, d, d + DAY)
        st.firings_per_day.append(n)
        hours = (awake[(awake >= d) & (awake < d + DAY)] - d) // HOUR
        for h in hours.tolist():
            st.by_hour[int(h)] += 1
        day_outs = [(s, e) for s, e in outs if d + 6 * HOUR <= s < d + 22 * HOUR]
        st.outings_per_day.append(len(day_outs))
        st.outing_min += [(e - s) / MIN for s, e in day_outs]
        wake = wakes[d]
        bed = bedtime(up, entrance, d)
        if wake is not None:
            st.wake_min.append((wake - d) / MIN)
        if bed is not None:
            st.bed_min.append((bed - d) / MIN)
            nxt = wakes.get(d + DAY)
            if nxt is not None and nxt > bed:
                night = up[(up > bed) & (up < nxt)].tolist()
                st.night_exits.append(clusters(night, EXIT_CLUSTER_MS))
        if wake is None or bed is None or bed <= wake:
            continue
        longest = {b: 0.0 for b, _, _ in BLOCKS}
        ins = inside[(inside >= wake) & (inside <= bed)].tolist()
        for a, b in zip(ins, ins[1:], strict=False):
            if any(s < b and e > a for s, e in outs):
                continue  # out of the home, not quiet at home
            block = next(name for name, lo, hi in BLOCKS if lo <= a - d < hi)
            spell = (b - a) / MIN
            longest[block] = max(longest[block], spell)
            if b - a > QUIET_MIN_MS:
                st.quiet_spells[block].append(spell)
        for block, v in longest.items():
            st.quiet_longest[block].append(v)
    for (kind, _device), ts in wire.message_times.items():
        sel = [t for t in ts if start_ms <= t < end_ms]
        key = "motion" if kind == "motion" else "contact"
        st.gaps_min.setdefault(key, []).extend(g / MIN for g in _gaps(sel))
    return st


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical CDFs (None if empty).

    >>> ks_statistic([1, 2, 3], [1, 2, 3]), ks_statistic([1, 2], [5, 6]), ks_statistic([1, 2, 3, 4], [3, 4, 5, 6])
    (0.0, 1.0, 0.5)
    """
    if len(a) == 0 or len(b) == 0:
        return None
    x = np.sort(np.asarray(a, dtype=np.float64))
    y = np.sort(np.asarray(b, dtype=np.float64))
    grid = np.concatenate([x, y])
    fx = np.searchsorted(x, grid, side="right") / x.size
    fy = np.searchsorted(y, grid, side="right") / y.size
    return float(np.max(np.abs(fx - fy)))


def profile_distance(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Total-variation distance between two histograms (normalised first): 0 same shape, 1 disjoint.

    >>> profile_distance([1, 1, 0], [2, 2, 0]), profile_distance([1, 0], [0, 3])
    (0.0, 1.0)
    """
    sa, sb = float(sum(a)), float(sum(b))
    if sa <= 0 or sb <= 0:
        return None
    return 0.5 * float(sum(abs(x / sa - y / sb) for x, y in zip(a, b, strict=True)))


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the comparison table."""

    name: str
    real: list[float]
    sim: list[float]
    unit: str = "min"
    clock: bool = False
    """Values are minutes after midnight: print them as times of day."""


def rows(real: Sequence[HomeStats], sim: Sequence[HomeStats]) -> list[Row]:
    """The comparison rows, pooling the homes of each side."""

    def pool(homes: Sequence[HomeStats], get: object) -> list[float]:
        out: list[float] = []
        for h in homes:
            v = get(h)  # type: ignore[operator]
            if v is None:
                continue
            out.extend(v if isinstance(v, list) else [v])
        return out

    specs: list[tuple[str, object, str, bool]] = [
        ("wake time", lambda h: h.wake_min, "h:mm", True),
        ("wake-time spread per home (sd)", lambda h: h.wake_sd, "min", False),
        ("wake-time spread per home (IQR)", lambda h: h.wake_iqr, "min", False),
        ("bedtime", lambda h: h.bed_min, "h:mm", True),
        ("night exits per night", lambda h: [float(x) for x in h.night_exits], "", False),
        ("outings per day", lambda h: [float(x) for x in h.outings_per_day], "", False),
        ("outing duration", lambda h: h.outing_min, "min", False),
    ]
    for block, _, _ in BLOCKS:
        specs.append((f"longest quiet spell per day, {block}", _block(block, longest=True), "min", False))
    for block, _, _ in BLOCKS:
        specs.append((f"quiet spells > 15 min, {block}", _block(block, longest=False), "min", False))
    specs += [
        ("quiet spells > 15 min per day", _spells_per_day, "", False),
        ("activity events per day", lambda h: [float(x) for x in h.firings_per_day], "", False),
        ("message gaps, motion sensors", lambda h: h.gaps_min.get("motion"), "min", False),
        ("message gaps, contacts and doors", lambda h: h.gaps_min.get("contact"), "min", False),
    ]
    return [Row(name, pool(real, get), pool(sim, get), unit, clock) for name, get, unit, clock in specs]


def _block(block: str, *, longest: bool) -> object:
    def get(h: HomeStats) -> list[float]:
        return (h.quiet_longest if longest else h.quiet_spells).get(block, [])

    return get


def _spells_per_day(h: HomeStats) -> list[float]:
    n = sum(len(v) for v in h.quiet_spells.values())
    return [n / max(len(h.quiet_longest.get("morning", [])), 1)] if h.days else []


def _fmt(v: float, clock: bool) -> str:
    if clock:
        m = int(round(v)) % (24 * 60)
        return f"{m // 60:02d}:{m % 60:02d}"
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"


def _describe(values: Sequence[float], clock: bool) -> str:
    if not values:
        return "–"
    p10, p50, p90 = np.percentile(values, [10, 50, 90]).tolist()
    return f"{_fmt(p50, clock)} ({_fmt(p10, clock)}–{_fmt(p90, clock)}), n={len(values)}"


def hour_profile(homes: Sequence[HomeStats]) -> list[float]:
    """Share of the day's activity per hour of the local day (each home weighted equally)."""
    total = np.zeros(24)
    for h in homes:
        v = np.asarray(h.by_hour, dtype=np.float64)
        if v.sum() > 0:
            total += v / v.sum()
    s = total.sum()
    return (total / s).tolist() if s > 0 else total.tolist()


def table(real: Sequence[HomeStats], sim: Sequence[HomeStats]) -> str:
    """The Markdown table: median (p10–p90) real and simulated, the KS distance and the ratio of the medians."""
    lines = [
        "| statistic | real: median (p10–p90), n | simulated: median (p10–p90), n | KS | sim/real median |",
        "|---|---|---|---:|---:|",
    ]
    for r in rows(real, sim):
        ks = ks_statistic(r.real, r.sim)
        ratio = "–"
        if r.real and r.sim and not r.clock:
            mr, ms = float(np.median(r.real)), float(np.median(r.sim))
            ratio = f"{ms / mr:.2f}" if mr > 0 else "–"
        unit = f" ({r.unit})" if r.unit else ""
        lines.append(
            f"| {r.name}{unit} | {_describe(r.real, r.clock)} | {_describe(r.sim, r.clock)} | "
            f"{'–' if ks is None else f'{ks:.2f}'} | {ratio} |"
        )
    pr, ps = hour_profile(real), hour_profile(sim)
    tv = profile_distance(pr, ps)
    peak_r = max(range(24), key=lambda h: pr[h]) if any(pr) else 0
    peak_s = max(range(24), key=lambda h: ps[h]) if any(ps) else 0
    night_r = sum(pr[h] for h in range(0, 6)) * 100
    night_s = sum(ps[h] for h in range(0, 6)) * 100
    lines.append(
        f"| activity by hour of day (share 00–06 h; peak hour) | {night_r:.1f} %; {peak_r:02d} h | "
        f"{night_s:.1f} %; {peak_s:02d} h | {'–' if tv is None else f'{tv:.2f} (TV)'} | – |"
    )
    return "\n".join(lines)


def hour_table(real: Sequence[HomeStats], sim: Sequence[HomeStats]) -> str:
    """Share of the day's activity per hour, real beside simulated (percent)."""
    pr, ps = hour_profile(real), hour_profile(sim)
    head = "| hour | " + " | ".join(f"{h:02d}" for h in range(24)) + " |"
    sep = "|---|" + "---:|" * 24
    return "\n".join(
        [
            head,
            sep,
            "| real % | " + " | ".join(f"{v * 100:.1f}" for v in pr) + " |",
            "| simulated % | " + " | ".join(f"{v * 100:.1f}" for v in ps) + " |",
        ]
    )


def real_home_stats(*, include_unseen: bool = False) -> list[HomeStats]:
    """Summaries of the real development homes from the dataset cache (the held-out home only if asked).

    A release that did not record silence (MIT: firings only inside annotated activities) is left out: its quiet
    spells, wake times and outings would be gaps in the release, not behaviour.
    """
    from detection.realdata.mapping import intervals_of, map_devices, messages
    from detection.realdata.sources import TL_HOMES, load_home

    out = []
    for info in TL_HOMES:
        if (info.unseen and not include_unseen) or not info.silence_recorded:
            continue
        raw = load_home(info)
        devices = map_devices(raw)
        ivs = intervals_of(raw, devices)
        t0 = min(f.start_s for f in raw.firings) * 1000
        t1 = max(f.start_s + f.duration_s for f in raw.firings) * 1000
        msgs = messages(info.site, devices, ivs, t0, t1 + 1)
        wire = read_wire(msgs, {d.device: d.room for d in devices}).get(info.site, Wire())
        out.append(summarise(info.site, wire, tz_offset_ms=0, start_ms=t0, end_ms=t1 + 1))
    return out


def older_adult_stats() -> HomeStats | None:
    """Summary of the one real home of an older adult (HomeAssist Home1), or None when its file is not in the cache.

    Held out for detection, but the only older resident of the set, so the simulator of elders is also compared with
    it. Its devices are silent inside their own failure records and nothing is sent inside its platform outages, as
    in the evaluation; it has no absence labels, so its outings are read from the door as for any home.
    """
    from detection.realdata.evaluate import prepare, recorded_messages
    from detection.realdata.sources import HOMEASSIST_HOMES, available_homes, load_home

    homes = available_homes(homes=HOMEASSIST_HOMES)
    if not homes:
        return None
    prep = prepare(load_home(homes[0]))
    wire = read_wire(recorded_messages(prep), {d.device: d.room for d in prep.devices}).get(prep.info.site, Wire())
    return summarise(prep.info.site, wire, tz_offset_ms=0, start_ms=prep.t0, end_ms=prep.t1 + 1)
