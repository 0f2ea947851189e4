"""Real homes through the detection core: false pages and prompts per home-month, recall and delay per incident.

For each home of the development set (:mod:`detection.realdata.sources`):

1. The recording is mapped onto the wire contract (:mod:`detection.realdata.mapping`), with injected device-failure
   windows (the recordings label none): a device sends nothing at all for 24 h.
2. The whole recording is replayed through the engine in event time (``tz_offset_s=0``: the recordings keep local
   time). Every behavioural alert that pages after the warm-up (the first :data:`WARMUP_DAYS` days) and outside
   a labelled absence (+ 15 min) counts as a **false page**: these are ordinary days of people living alone.
   Check-in prompts are counted the same way. Only the annotated span is scored (first label to last label: outside
   it no absence is known; van Kasteren B's sensors run ten days past its labels), and a release that lists firings
   only inside annotated activities (MIT) has no silences to score: its pages are counted apart, not as false.
   The engine is snapshotted at every care-day boundary.
3. Incidents are injected into real days after the warm-up (inside the annotated span), each replayed alone from
   the snapshot of its care day, the recording's own messages with the incident applied:

   - ``long_lie``: the first firing after a random daytime moment (09:00–18:00) with the resident at home and out
     of bed; every firing after it is removed for 8 h (heartbeats go on);
   - ``no_wake``: the morning's firings outside the bedroom (03:00–14:00) are removed; a bed that was occupied at
     03:00 stays occupied; bedroom motion stays (someone awake in bed). Delay counts from the real wake time;
   - ``night_exit`` (homes with a bed-occupancy sensor): a real night bed exit (00:00–05:00) is not followed by a
     return: nothing after the first 2 minutes for 4 h. On a night without a real exit, one is injected at a random
     minute 01:00–05:00 with the bed occupied for 30 min: the bed empties, a bedroom PIR (if any) fires once
     20 s later, then nothing for 4 h;
   - ``night_door`` (homes with an entrance door): the front door opens and closes once at 02:00–04:00 while the
     resident sleeps, then nothing inside for 2 h (wandering).

   An incident is detected when a behavioural alert pages after its start and within its window; a check-in
   prompt counts as answered when the (modified) recording shows the resident active within the check-in window
   (any firing of a sensor inside the home), so an injected incident's prompts go unanswered and page.
4. Device health: each failure window must raise DEVICE_OFFLINE for its device within 2 × the declared heartbeat
   + 10 min of its start; offline notifications of healthy devices are counted per device-week.

A home with its own failure records and platform outages (HomeAssist Home1, :mod:`detection.realdata.mapping`)
is scored the same way with these differences: its **real** failure windows are scored instead of injected ones (a
window shorter than its target cannot be found in time and is counted apart); nothing is scored inside a platform
outage or for :data:`OUTAGE_SETTLE_MS` after it (the engine's learned state is kept across it, as in the product);
it has no labelled absences, so every page counts and its false-page rate is an **upper bound**; incidents are
injected only inside its continuous stretches (:func:`continuous_stretches`) and not inside an outing inferred from
the entrance door (the dataset authors' rule: the door closed, nothing moved, the door opened, over 10 min).
A release with no labels at all and no failure records (UCI 799, ``upc-1``) is scored whole the same way (every
page counts: an upper bound) with injected failure windows; without an entrance door no outing can be inferred.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import msgspec
import numpy as np

from detection.config import DetectConfig
from detection.detectors.base import BEHAVIOURAL
from detection.engine import Engine
from detection.fusion import Fusion
from detection.homes import HomeRegistry
from detection.models import Alert, AlertType
from detection.realdata.mapping import (
    OUTAGE_MIN_S,
    Interval,
    MappedDevice,
    Message,
    failure_windows,
    intervals_of,
    map_devices,
    merge,
    messages,
    platform_outages,
    registry_of,
    site_info,
)
from detection.realdata.sources import TL_HOMES, RawHome, TlHomeInfo, available_homes, load_home
from gateway.contract import decode_message
from gateway.errors import DecodeError
from gateway.models import EXPECTED_CADENCE_S, DeviceKind

MIN: Final = 60_000
HOUR: Final = 60 * MIN
DAY: Final = 24 * HOUR
WARMUP_DAYS: Final = 7
ABSENCE_MARGIN_MS: Final = 15 * MIN
INCIDENT_TYPES: Final = ("long_lie", "no_wake", "night_exit", "night_door")
WINDOW_MS: Final = {"long_lie": 8 * HOUR, "no_wake": 11 * HOUR, "night_exit": 4 * HOUR, "night_door": 2 * HOUR}
PAGING: Final = frozenset(BEHAVIOURAL)
OUTAGE_SETTLE_MS: Final = 6 * HOUR
"""Not scored after a platform outage: the longest heartbeat of the home's devices (a door contact), so every
healthy device has spoken again before its silence or the resident's counts."""
STRETCH_MIN_DAYS: Final = 7
OUTING_MIN_MS: Final = 10 * MIN


def real_config(**overrides: object) -> DetectConfig:
    """The default configuration with local time as recorded (the bundle's epoch seconds are local wall time)."""
    return msgspec.structs.replace(DetectConfig(), tz_offset_s=0, **overrides)


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """One injected incident and what the engine made of it."""

    kind: str
    start_ms: int
    detected: bool
    delay_min: float | None
    alert: str | None
    prompts: int


class HomeResult(msgspec.Struct, kw_only=True):
    """One home's scores."""

    site: str
    source: str
    unseen: bool
    days: float
    scored_days: float
    messages: int
    replay_s: float
    false_pages: int = 0
    prompts: int = 0
    false_by_type: dict[str, int] = msgspec.field(default_factory=dict)
    incidents: list[Incident] = msgspec.field(default_factory=list)
    failures: int = 0
    failures_found: int = 0
    failure_delays_min: list[float] = msgspec.field(default_factory=list)
    failures_in_target: int = 0
    healthy_device_notes: int = 0
    device_weeks: float = 0.0
    unsupported: dict[str, str] = msgspec.field(default_factory=dict)
    learned: str = ""
    labelled_absences: bool = True
    """False: outings are not excluded, so the false-page rate is an upper bound."""
    real_failures: bool = False
    """The failure windows are the devices' own records, not injected."""
    short_failures: int = 0
    """Real failures shorter than their target (cannot be found in time); not in ``failures``."""
    short_failures_found: int = 0
    failures_not_notified: int = 0
    """Failures not found whose DEVICE_OFFLINE was raised but held back (one device notification a day)."""
    failures_already_offline: int = 0
    failures_shown_in_target: int = 0
    """Real failures the console showed as offline within the target: an alert raised in time (notified or held
    back by the one-a-day rule), or the device still called offline from an earlier window."""
    """Failures not found because the device was still called offline from before the window began."""
    outages: int = 0
    outage_alerts: list[float] = msgspec.field(default_factory=list)
    """Delay (min) of the site-offline alert of each platform outage that raised one."""
    stretch_pages: int = 0
    stretch_days: float = 0.0
    outing_pages: int = 0
    """A home without absence labels: its false pages inside an outing inferred from the entrance door (+ 15 min)."""
    unscored_pages: int = 0
    """Pages after the warm-up where the recording has no ground truth (:attr:`_Prepared.unscored`)."""
    unscored_days: float = 0.0
    silence_recorded: bool = True

    @property
    def months(self) -> float:
        """Scored home-months (30 days)."""
        return self.scored_days / 30.0


class _Prepared(msgspec.Struct, kw_only=True):
    info: TlHomeInfo
    devices: tuple[MappedDevice, ...]
    intervals: dict[str, list[Interval]]
    absences: list[Interval]
    failures: list[tuple[str, int, int]]
    t0: int
    t1: int
    outages: list[Interval] = msgspec.field(default_factory=list)
    stretches: list[Interval] | None = None
    """Where incidents may be injected (None: anywhere after the warm-up)."""
    avoid: list[Interval] | None = None
    """Where incidents are not placed (None: the labelled absences)."""
    real_failures: bool = False
    unscored: list[Interval] = msgspec.field(default_factory=list)
    """No ground truth for normal time here: no page or prompt is scored and the time is not in the scored days.
    The recording outside its annotated span (the labels began later or ended earlier: no absence is known there),
    or all of it when the release did not record silence (:attr:`TlHomeInfo.silence_recorded`)."""


def _silent(failures: Sequence[tuple[str, int, int]]) -> Callable[[str, int], bool]:
    by_dev: dict[str, list[Interval]] = {}
    for d, s, e in failures:
        by_dev.setdefault(d, []).append((s, e))
    merged = {d: merge(ivs) for d, ivs in by_dev.items()}
    starts = {d: [s for s, _ in ivs] for d, ivs in merged.items()}

    def silent(device: str, t: int) -> bool:
        ivs = merged.get(device)
        if ivs is None:
            return False
        k = bisect.bisect_right(starts[device], t) - 1
        return k >= 0 and t < ivs[k][1]

    return silent


def _cut_out(ivs: Sequence[Interval], windows: Sequence[Interval]) -> list[Interval]:
    """``ivs`` without the parts inside ``windows``."""
    out = []
    for s, e in ivs:
        parts = [(s, e)]
        for a, b in windows:
            parts = [p for x, y in parts for p in ((x, min(y, a)), (max(x, b), y)) if p[0] < p[1]]
        out.extend(parts)
    return out


def continuous_stretches(activity_ms: Sequence[int], outages: Sequence[Interval]) -> list[Interval]:
    """Stretches of at least :data:`STRETCH_MIN_DAYS` days without an outage or a day with no activity at all."""
    gap = OUTAGE_MIN_S * 1000
    out: list[Interval] = []
    times = sorted(activity_ms)
    start = times[0] if times else 0
    for a, b in zip(times, times[1:], strict=False):
        if b - a >= gap or any(a < x < b for x, _ in outages):
            out.append((start, a))
            start = b
    if times:
        out.append((start, times[-1]))
    return [(a, b) for a, b in out if b - a >= STRETCH_MIN_DAYS * DAY]


def inferred_outings(devices: Sequence[MappedDevice], intervals: dict[str, list[Interval]]) -> list[Interval]:
    """Door closed → nothing moved → door opened, over :data:`OUTING_MIN_MS` (``outing`` in the source's rules)."""
    entrance = {d.device for d in devices if d.room == "entrance"}
    contacts = {d.device for d in devices if d.kind is DeviceKind.DOOR}
    events = sorted(
        [(s, dev, "open") for dev, ivs in intervals.items() for s, _ in ivs]
        + [(e, dev, "close") for dev, ivs in intervals.items() if dev in contacts for _, e in ivs]
    )
    out = []
    for (t, dev, what), (u, dev2, what2) in zip(events, events[1:], strict=False):
        if dev in entrance and what == "close" and dev2 in entrance and what2 == "open" and u - t > OUTING_MIN_MS:
            out.append((t, u))
    return out


def _prepare_recorded(raw: RawHome) -> _Prepared:
    """A home with its own failure records and platform outages (HomeAssist)."""
    devices = map_devices(raw)
    outages = platform_outages(raw, devices)
    failures = failure_windows(raw, devices, outages)
    # A PIR's firings inside its failure windows are gone (the engine never sees them, so incidents are not placed
    # on them). A contact keeps its spans: the failure window silences its edges in :func:`messages`, and cutting
    # a span would invent an ``open`` when the device returns with the contact still open.
    motion = {d.device for d in devices if d.kind is DeviceKind.MOTION}
    intervals = {
        dev: _cut_out(ivs, [(s, e) for d, s, e in failures if d == dev]) if dev in motion else ivs
        for dev, ivs in intervals_of(raw, devices).items()
    }
    activity = [s for ivs in intervals.values() for s, _ in ivs]
    return _Prepared(
        info=raw.info,
        devices=devices,
        intervals=intervals,
        absences=[],
        failures=failures,
        t0=raw.records_s[0] * 1000,
        t1=raw.records_s[-1] * 1000 + 1000,
        outages=outages,
        stretches=continuous_stretches(activity, outages),
        avoid=inferred_outings(devices, intervals),
        real_failures=True,
    )


def prepare(raw: RawHome) -> _Prepared:
    """Map one parsed home and choose its failure windows (deterministic)."""
    if raw.records_s:
        return _prepare_recorded(raw)
    devices = map_devices(raw)
    intervals = intervals_of(raw, devices)
    out_ids = {i for i, n in raw.activity_names.items() if n in raw.info.absence_labels}
    absences = merge(
        (a.start_s * 1000, (a.start_s + max(a.duration_s, 1)) * 1000) for a in raw.activities if a.ident in out_ids
    )
    t0 = min(f.start_s for f in raw.firings) * 1000
    t1 = max(f.start_s + f.duration_s for f in raw.firings) * 1000
    # A release with no labels at all (UCI 799, like Home1) is scored whole, every page counted: an upper bound.
    unlabelled = outside_annotations(raw, t0, t1) if raw.info.absence_labels else []
    # Two failure windows of 24 h: the two busiest non-mattress devices, at 40 % and 70 % of the recording.
    busiest = sorted(
        (d for d in devices if d.kind is not DeviceKind.MATTRESS), key=lambda d: -len(intervals.get(d.device, ()))
    )[:2]
    failures = []
    for d, frac in zip(busiest, (0.4, 0.7), strict=False):
        s = t0 + int((t1 - t0) * frac) // HOUR * HOUR + 17 * MIN
        failures.append((d.device, s, s + DAY))
    return _Prepared(
        info=raw.info,
        devices=devices,
        intervals=intervals,
        absences=absences,
        failures=failures,
        t0=t0,
        t1=t1,
        avoid=merge([*absences, *unlabelled]) if unlabelled else None,
        unscored=unlabelled if raw.info.silence_recorded else [(t0, t1)],
    )


def outside_annotations(raw: RawHome, t0: int, t1: int) -> list[Interval]:
    """The parts of ``[t0, t1)`` before the first annotated activity and after the last one (ms).

    Only inside the annotated span does a missing absence label mean the resident was at home (van Kasteren B's
    labels end on 7 Aug, its sensors run on to 17 Aug; van Kasteren A's end at 18:25 the evening he leaves for two
    days). A home without any annotation has no span: all of it is outside.
    """
    if not raw.activities:
        return [(t0, t1)]
    a0 = min(a.start_s for a in raw.activities) * 1000
    a1 = max(a.start_s + a.duration_s for a in raw.activities) * 1000
    return [(s, e) for s, e in ((t0, min(a0, t1)), (max(a1, t0), t1)) if s < e]


def recorded_messages(prep: _Prepared) -> list[Message]:
    """The home's whole recording as its gateway would have sent it.

    Devices are silent inside their failure records, and nothing is sent inside a platform outage.
    """
    return messages(
        prep.info.site,
        prep.devices,
        prep.intervals,
        prep.t0,
        prep.t1 + 1,
        silent=_silent(prep.failures),
        outages=prep.outages,
    )


def _overlap_ms(ivs: Sequence[Interval], lo: int, hi: int) -> int:
    """How much of ``[lo, hi)`` the (disjoint) intervals cover."""
    return sum(max(0, min(b, hi) - max(a, lo)) for a, b in ivs)


def _in(ivs: Sequence[Interval], t: int, margin: int = 0) -> bool:
    return any(s - margin <= t < e + margin for s, e in ivs)


class _Run(msgspec.Struct, kw_only=True):
    pages: list[Alert]
    device_alerts: list[Alert]
    prompts: list[tuple[int, str]]
    messages: int
    seconds: float
    site_alerts: list[Alert] = msgspec.field(default_factory=list)
    offline_raised: list[Alert] = msgspec.field(default_factory=list)
    """Every DEVICE_OFFLINE the engine raised or cleared, notified or not (the console lists them all)."""


def _replay(
    engine: Engine,
    msgs: Sequence[Message],
    registry: HomeRegistry,
    *,
    end_ms: int,
    snapshots: dict[int, bytes] | None = None,
    day_boundary_ms: Callable[[int], int] | None = None,
) -> _Run:
    fusion = Fusion()
    pages: list[Alert] = []
    device: list[Alert] = []
    site: list[Alert] = []
    raised: list[Alert] = []
    started = time.perf_counter()
    next_snap = day_boundary_ms(msgs[0][0]) if (snapshots is not None and day_boundary_ms and msgs) else None
    n_prompts = len(engine.checkins)

    def take(alerts: list[Alert]) -> None:
        for a in alerts:
            u = fusion.add(a)
            if a.type is AlertType.DEVICE_OFFLINE:
                raised.append(a)
            if not u.notify or a.clears:
                continue
            if a.type in PAGING:
                pages.append(a)
            elif a.type in (AlertType.DEVICE_OFFLINE, AlertType.LOW_BATTERY):
                device.append(a)
            elif a.type is AlertType.SITE_OFFLINE:
                site.append(a)

    for received, topic, payload in msgs:
        if next_snap is not None and received >= next_snap:
            assert snapshots is not None and day_boundary_ms is not None
            take(engine.advance(next_snap))
            snapshots[next_snap] = engine.snapshot()
            next_snap = day_boundary_ms(received)
        try:
            reading = decode_message(topic, payload, received_ms=received, directory=registry)
        except DecodeError:
            continue
        take(engine.process(reading))
    take(engine.advance(end_ms))
    prompts = [(p.time_ms, p.types[0]) for p in engine.checkins[n_prompts:] if p.what == "prompt"]
    return _Run(
        pages=pages,
        device_alerts=device,
        prompts=prompts,
        messages=len(msgs),
        seconds=time.perf_counter() - started,
        site_alerts=site,
        offline_raised=raised,
    )


def _first_after(ivs: Sequence[Interval], t: int) -> int | None:
    best = None
    for s, _ in ivs:
        if s >= t and (best is None or s < best):
            best = s
    return best


def _modify(
    prep: _Prepared, cut: Callable[[str, Interval], list[Interval]], extra: dict[str, list[Interval]] | None = None
) -> dict[str, list[Interval]]:
    out: dict[str, list[Interval]] = {}
    for dev, ivs in prep.intervals.items():
        new: list[Interval] = []
        for iv in ivs:
            new.extend(cut(dev, iv))
        out[dev] = merge(new + (extra or {}).get(dev, []))
    return out


def _remove_window(
    keep: Callable[[str], bool], a: int, b: int, contacts: frozenset[str] = frozenset()
) -> Callable[[str, Interval], list[Interval]]:
    """Cut every firing of devices not kept out of [a, b), without inventing events at the cut.

    A motion firing under way at ``a`` ends there (a PIR has no "end" message); a contact that is open at ``a``
    (a cupboard left open) stays open until ``b`` at least: closing it would be activity nobody did.
    """

    def cut(dev: str, iv: Interval) -> list[Interval]:
        s, e = iv
        if keep(dev) or e <= a or s >= b:
            return [iv]
        if s < a:
            return [(s, max(e, b) if dev in contacts else a)]
        return [(b, e)] if e > b and dev not in contacts else []

    return cut


def _chain(
    c1: Callable[[str, Interval], list[Interval]], c2: Callable[[str, Interval], list[Interval]]
) -> Callable[[str, Interval], list[Interval]]:
    def both(dev: str, iv: Interval) -> list[Interval]:
        return [p for q in c1(dev, iv) for p in c2(dev, q)]

    return both


def _night_exit_moment(bed: Sequence[Interval], day: int, rng: random.Random) -> int | None:
    """A random minute 01:00–05:00 after ``day`` (midnight) with the bed occupied for 30 min already (10 tries)."""
    for _ in range(10):
        t = day + HOUR + rng.randrange(4 * 60) * MIN
        if any(s + 30 * MIN <= t < e for s, e in bed):
            return t
    return None


def _incidents(prep: _Prepared, rng: random.Random) -> Iterator[tuple[str, int, dict[str, list[Interval]], int]]:
    """``(kind, start_ms, modified intervals, reference_ms)`` for every injected incident of the home, in order."""
    devs = {d.device: d for d in prep.devices}
    contacts = frozenset(d.device for d in prep.devices if d.kind is DeviceKind.DOOR)
    mattress = next((d.device for d in prep.devices if d.kind is DeviceKind.MATTRESS), None)
    entrance = next((d.device for d in prep.devices if d.room == "entrance"), None)
    bedroom_motion = [
        d.device for d in prep.devices if d.kind is DeviceKind.MOTION and d.room == "bedroom" and not d.presence
    ]
    all_ivs = sorted((s, e, dev) for dev, ivs in prep.intervals.items() for s, e in ivs)
    starts = [s for s, _, _ in all_ivs]
    avoid = prep.absences if prep.avoid is None else prep.avoid
    first_midnight = prep.t0 // DAY * DAY + DAY
    for day in range(first_midnight + WARMUP_DAYS * DAY, prep.t1 - DAY, DAY):
        bed = prep.intervals.get(mattress, []) if mattress else []
        # long lie: one in the morning-midday, one in the afternoon-evening, each at the first firing after a
        # random moment with the resident at home (up to 10 tries)
        for lo, hi in ((9, 14), (14, 20)):
            for _ in range(10):
                t = day + lo * HOUR + rng.randrange((hi - lo) * 60) * MIN
                idx = int(np.searchsorted(starts, t))
                if idx >= len(all_ivs):
                    break
                ev = all_ivs[idx][0]
                if (
                    ev < day + hi * HOUR
                    and not _in(avoid, ev, ABSENCE_MARGIN_MS)
                    and not _in(avoid, ev + 2 * HOUR)
                    and not (mattress and _in(bed, ev))
                ):
                    cut = _remove_window(lambda d: False, ev + 1000, ev + WINDOW_MS["long_lie"], contacts)
                    yield ("long_lie", ev, _modify(prep, cut), ev)
                    break
        # no wake-up
        morning = day + 3 * HOUR
        outside = [s for s, _, dev in all_ivs if morning <= s < day + 14 * HOUR and devs[dev].room != "bedroom"]
        if outside and not _in(avoid, outside[0]) and not _in(avoid, morning):
            wake = outside[0]
            extra: dict[str, list[Interval]] = {}
            if mattress and _in(bed, morning):
                extra[mattress] = [(morning, day + 14 * HOUR)]
            cut = _remove_window(lambda d: devs[d].room == "bedroom", morning, day + 14 * HOUR, contacts)
            yield ("no_wake", morning, _modify(prep, cut, extra), wake)
        # night exit without return
        if mattress:
            exits = [e for s, e in bed if day <= e < day + 5 * HOUR and e - s > 30 * MIN]
            if exits:
                x = exits[0]
                cut = _remove_window(lambda d: False, x + 2 * MIN, x + WINDOW_MS["night_exit"], contacts)
                cut_bed = _remove_window(lambda d: d != mattress, x, x + WINDOW_MS["night_exit"], contacts)

                yield ("night_exit", x, _modify(prep, _chain(cut, cut_bed)), x)
            elif (up := _night_exit_moment(bed, day, rng)) is not None and not _in(avoid, up, HOUR):
                # No real exit this night: the resident gets up at a moment the bed is occupied (and has been for
                # 30 min); the bed empties there, the bedroom motion sensor (if any) sees them get up, then nothing.
                cut = _remove_window(lambda d: False, up, up + WINDOW_MS["night_exit"], contacts)
                getting_up = {d: [(up + 20_000, up + 25_000)] for d in bedroom_motion}
                yield ("night_exit", up, _modify(prep, cut, getting_up), up)
        # night door (wandering)
        if entrance:
            n = day + 2 * HOUR + rng.randrange(120) * MIN
            door_open = _in(prep.intervals[entrance], n, 20 * MIN)  # the door is already open then: no new opening
            # a failing door contact sends nothing: an opening it cannot report is not an incident to score
            door_dead = any(d == entrance and s <= n < e for d, s, e in prep.failures)
            if not _in(avoid, n, HOUR) and not door_open and not door_dead and (not mattress or _in(bed, n)):
                cut = _remove_window(lambda d: False, n, n + WINDOW_MS["night_door"], contacts)
                yield ("night_door", n, _modify(prep, cut, {entrance: [(n, n + 20_000)]}), n)


def _boundary(config: DetectConfig) -> Callable[[int], int]:
    tz = config.tz_offset_s * 1000
    b = config.day_boundary_min * MIN

    def next_boundary(t: int) -> int:
        x = (t + tz - b) // DAY * DAY + b - tz
        return x + DAY if x <= t else x

    return next_boundary


def evaluate_home(raw: RawHome, *, config: DetectConfig | None = None, seed: int = 19) -> HomeResult:
    """Score one home (see the module docstring)."""
    cfg = config or real_config()
    prep = prepare(raw)
    info = site_info(prep.info.site, prep.devices)
    registry = registry_of([info])
    silent = _silent(prep.failures)
    msgs = messages(prep.info.site, prep.devices, prep.intervals, prep.t0, prep.t1, silent=silent, outages=prep.outages)
    engine = Engine(registry=registry, config=cfg)
    engine.ensure_homes(prep.t0)
    snaps: dict[int, bytes] = {}
    base = _replay(engine, msgs, registry, end_ms=prep.t1, snapshots=snaps, day_boundary_ms=_boundary(cfg))
    warm_end = prep.t0 + WARMUP_DAYS * DAY
    # Not scored: a platform outage and the settle after it (the warm-up counts from the first data).
    dark = merge((a, b + OUTAGE_SETTLE_MS) for a, b in prep.outages)
    unscored = merge([*dark, *prep.unscored])
    dark_scored = _overlap_ms(unscored, warm_end, prep.t1)
    res = HomeResult(
        site=prep.info.site,
        source=prep.info.source,
        unseen=prep.info.unseen,
        days=(prep.t1 - prep.t0) / DAY,
        scored_days=max(0.0, (prep.t1 - warm_end - dark_scored) / DAY),
        messages=base.messages,
        replay_s=base.seconds,
        labelled_absences=bool(prep.info.absence_labels),
        silence_recorded=prep.info.silence_recorded,
        unscored_days=_overlap_ms(merge(prep.unscored), warm_end, prep.t1) / DAY,
        real_failures=prep.real_failures,
        outages=len(prep.outages),
    )
    home = engine.homes[prep.info.site]
    res.unsupported = dict(engine.unsupported(prep.info.site))
    b = home.baseline
    res.learned = (
        f"{'personal' if b.personal else 'population'} baseline from {b.n_days} days;"
        f" quiet limits {'/'.join(f'{x:.0f}' for x in b.inactivity_limit_min)} min;"
        f" not up by {int(b.not_up_min) // 60:02d}:{int(b.not_up_min) % 60:02d}"
    )
    stretches = prep.stretches or []
    for a in base.pages:
        if a.time_ms < warm_end or _in(prep.absences, a.time_ms, ABSENCE_MARGIN_MS) or _in(unscored, a.time_ms):
            res.unscored_pages += a.time_ms >= warm_end and _in(prep.unscored, a.time_ms)
            continue
        res.false_pages += 1
        res.false_by_type[a.type.value] = res.false_by_type.get(a.type.value, 0) + 1
        res.stretch_pages += _in(stretches, a.time_ms)
        if not prep.info.absence_labels and prep.avoid is not None:  # the outings inferred from the door
            res.outing_pages += _in(prep.avoid, a.time_ms, ABSENCE_MARGIN_MS)
    res.stretch_days = (
        sum(max(0, s1 - max(s0, warm_end)) - _overlap_ms(dark, max(s0, warm_end), s1) for s0, s1 in stretches) / DAY
    )
    res.prompts = sum(
        1
        for t, _ in base.prompts
        if t >= warm_end and not _in(prep.absences, t, ABSENCE_MARGIN_MS) and not _in(unscored, t)
    )
    for o_start, o_end in prep.outages:
        seen = [x.time_ms for x in base.site_alerts if o_start <= x.time_ms < o_end]
        if seen:
            res.outage_alerts.append(round((min(seen) - o_start) / MIN, 1))
    # device health
    failed_devices = {d for d, _, _ in prep.failures}
    for dev, s, e in prep.failures:
        dkind = next(d.kind for d in prep.devices if d.device == dev)
        target_min = 2 * EXPECTED_CADENCE_S[dkind] / 60 + 10
        times = [a.time_ms for a in base.device_alerts if a.device == dev and a.type is AlertType.DEVICE_OFFLINE]
        times = [t for t in times if s <= t < e]
        if (e - s) / MIN < target_min:
            # over before its target: it cannot be found in time (counted apart, found or not)
            res.short_failures += 1
            res.short_failures_found += bool(times)
            continue
        res.failures += 1
        ups = [a for a in base.offline_raised if a.device == dev]
        before = [a for a in ups if a.time_ms < s]
        if any(s <= a.time_ms <= s + target_min * MIN and not a.clears for a in ups) or (
            before and not before[-1].clears
        ):
            res.failures_shown_in_target += 1
        if not times:
            if any(s <= a.time_ms < e and not a.clears for a in ups):
                res.failures_not_notified += 1
            elif before and not before[-1].clears:
                res.failures_already_offline += 1
        if times:
            res.failures_found += 1
            delay = (times[0] - s) / MIN
            res.failure_delays_min.append(round(delay, 1))
            if delay <= target_min:
                res.failures_in_target += 1
    res.healthy_device_notes = sum(
        1
        for a in base.device_alerts
        if not any(a.device == d and s <= a.time_ms <= e + HOUR for d, s, e in prep.failures)
        and not _in(dark, a.time_ms)
    )
    if prep.real_failures:
        down = sum(b - a for a, b in prep.outages) + sum(e - s for _, s, e in prep.failures)
        res.device_weeks = (len(prep.devices) * (prep.t1 - prep.t0) - down) / (7 * DAY)
    else:
        res.device_weeks = len(prep.devices) * (prep.t1 - prep.t0) / (7 * DAY) - len(failed_devices) / 7
    # incidents
    rng = random.Random(f"{seed}:{prep.info.site}")
    for kind, start, ivs, ref in _incidents(prep, rng):
        snap_t = max((t for t in snaps if t <= start - 6 * HOUR), default=None)
        if snap_t is None:
            continue
        end = start + WINDOW_MS[kind]
        if prep.stretches is not None and not any(
            a <= snap_t and a + OUTAGE_SETTLE_MS <= start and end <= b for a, b in prep.stretches
        ):
            continue  # only inside a continuous stretch of the recording
        inc_msgs = messages(prep.info.site, prep.devices, ivs, snap_t, end, silent=silent, outages=prep.outages)
        eng, _ = Engine.restore(snaps[snap_t], registry=registry, config=cfg)
        run = _replay(eng, inc_msgs, registry, end_ms=end)
        hits = [a for a in run.pages if a.time_ms >= start]
        first = min(hits, key=lambda a: a.time_ms) if hits else None
        res.incidents.append(
            Incident(
                kind=kind,
                start_ms=start,
                detected=first is not None,
                delay_min=round((first.time_ms - ref) / MIN, 1) if first is not None else None,
                alert=first.type.value if first is not None else None,
                prompts=sum(1 for t, _ in run.prompts if t >= start),
            )
        )
    return res


def evaluate_homes(
    homes: Sequence[TlHomeInfo] | None = None,
    *,
    root: Path | None = None,
    config: DetectConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[HomeResult]:
    """Score the given homes, by default every home of the development set whose dataset is intact in the cache."""
    out = []
    for info in available_homes(root) if homes is None else homes:
        raw = load_home(info, root)
        r = evaluate_home(raw, config=config)
        if progress is not None:
            progress(f"{info.site}: {r.messages:,} messages in {r.replay_s:.1f} s, {r.false_pages} false pages")
        out.append(r)
    return out


def fit_population_prior(
    homes: Sequence[TlHomeInfo] = TL_HOMES, *, root: Path | None = None, quantile: float = 0.95
) -> tuple[float, ...]:
    """The grace-period inactivity limits, fitted on the development homes (the unseen ones are left out).

    Per block of the day: 1.15 × the median over homes of each home's ``quantile`` of its daily longest quiet
    spell (after a replay of the whole recording). ``DetectConfig.inactivity_population_min`` holds the result.
    """
    per_home = []
    cfg = real_config()
    for info in homes:
        if info.unseen:
            continue
        prep = prepare(load_home(info, root))
        registry = registry_of([site_info(info.site, prep.devices)])
        engine = Engine(registry=registry, config=cfg)
        engine.ensure_homes(prep.t0)
        msgs = messages(info.site, prep.devices, prep.intervals, prep.t0, prep.t1, silent=_silent(prep.failures))
        _replay(engine, msgs, registry, end_ms=prep.t1)
        rows = np.array([[np.nan if g is None else g for g in d.max_gap_min] for d in engine.homes[info.site].history])
        per_home.append(np.nanquantile(rows, quantile, axis=0))
    med = np.nanmedian(np.array(per_home), axis=0) * cfg.inactivity_margin
    return tuple(round(float(x)) for x in med)


def _pct(xs: Sequence[float], q: float) -> str:
    return f"{np.percentile(xs, q):.0f}" if xs else "-"


def _rate(inc: Sequence[Incident], kind: str) -> str:
    xs = [i for i in inc if i.kind == kind]
    if not xs:
        return "n/a"
    hit = [i.delay_min for i in xs if i.detected and i.delay_min is not None]
    return f"{100 * len(hit) / len(xs):.0f} % of {len(xs)} ({_pct(hit, 50)} / {_pct(hit, 95)} min)"


def _row(name: str, rs: Sequence[HomeResult]) -> str:
    months = sum(r.months for r in rs)
    inc = [i for r in rs for i in r.incidents]
    fails = sum(r.failures for r in rs)
    found = sum(r.failures_in_target for r in rs)
    shown = sum(r.failures_shown_in_target for r in rs)
    weeks = sum(r.device_weeks for r in rs)
    notes = sum(r.healthy_device_notes for r in rs)

    def per(n: int) -> str:
        return f"{n / months:.1f}" if months > 0 else "-"

    return (
        f"| {name} | {sum(r.scored_days for r in rs):.0f} | {per(sum(r.false_pages for r in rs))} |"
        f" {per(sum(r.prompts for r in rs))} | {_rate(inc, 'long_lie')} | {_rate(inc, 'no_wake')} |"
        f" {_rate(inc, 'night_exit')} | {_rate(inc, 'night_door')} |"
        f" {shown}/{fails} ({found} notified) | {notes / weeks if weeks else 0:.2f} |"
    )


def _label(r: HomeResult) -> str:
    marks = (["unseen"] if r.unseen else []) + ([] if r.labelled_absences else ["no absence labels: upper bound"])
    if not r.silence_recorded:
        marks.append("silence not recorded: pages not scored")
    return r.site + (f" ({'; '.join(marks)})" if marks else "")


def _recorded_notes(r: HomeResult) -> list[str]:
    """What a home with real failure records and platform outages adds to the report."""
    if not r.real_failures:
        return []
    med = f"{np.median(r.failure_delays_min):.0f} min" if r.failure_delays_min else "-"
    seen = ", ".join(f"{x:.0f}" for x in r.outage_alerts)
    per_month = r.stretch_pages / (r.stretch_days / 30) if r.stretch_days else 0.0
    return [
        f"- {r.site}: **real device failures** (the devices' own CommFailure records): {r.failures_in_target}/"
        f"{r.failures} notified within 2 × heartbeat + 10 min, {r.failures_shown_in_target}/{r.failures} shown"
        f" offline in the console within it, {r.failures_found}/{r.failures} notified while failing,"
        f" median delay {med}; of the {r.failures - r.failures_found} not notified, {r.failures_not_notified} were"
        f" raised and held back (one device notification a day) and {r.failures_already_offline} began while the"
        f" device was still called offline from before; {r.short_failures} shorter than their target (cannot be"
        f" found in time, not in the table): {r.short_failures_found} of them notified while failing",
        f"- {r.site}: platform outages {r.outages}, seen as site offline {len(r.outage_alerts)}"
        f" (after {seen or '-'} min); not scored inside an outage and for {OUTAGE_SETTLE_MS // HOUR} h after it",
        f"- {r.site}: no absence labels: every page counts ({r.false_pages} in {r.scored_days:.0f} scored days);"
        f" inside the continuous stretches {r.stretch_pages} in {r.stretch_days:.0f} days = {per_month:.1f} per"
        f" home-month; {r.outing_pages} inside an outing inferred from the entrance door (door closed, nothing moved,"
        f" door opened, over {OUTING_MIN_MS // MIN} min: the dataset authors' rule), so"
        f" {(r.false_pages - r.outing_pages) / r.months if r.months else 0.0:.1f} per home-month outside them",
    ]


def report_markdown(results: Sequence[HomeResult]) -> str:
    """The real-home table: per home, development homes together, the unseen home(s), all homes."""
    head = (
        "| home | scored days | false pages / home-month | check-in prompts / home-month |"
        " long lie: recall (median / p95 delay) | no wake-up | night exit without return | night door |"
        " device failures found in target: shown in the console (notified) |"
        " healthy-device notifications / device-week |\n"
        "|---|---:|---:|---:|---|---|---|---|---:|---:|"
    )
    lines = [head]
    lines += [_row(_label(r), [r]) for r in results]
    dev = [r for r in results if not r.unseen]
    unseen = [r for r in results if r.unseen]
    if dev:
        lines.append(_row("**development homes**", dev))
    if unseen:
        lines.append(_row("**unseen homes**", unseen))
    lines.append(_row("**all homes**", results))
    notes = []
    for r in results:
        if r.false_by_type:
            notes.append(f"- {r.site}: false pages by type {r.false_by_type}")
        if r.unscored_days >= 0.1 and r.labelled_absences:
            why = (
                "the release lists firings only inside annotated activities"
                if not r.silence_recorded
                else "outside the annotated span (no absence is known there)"
            )
            notes.append(
                f"- {r.site}: not scored: {r.unscored_days:.1f} days after the warm-up, {why};"
                f" {r.unscored_pages} page{'' if r.unscored_pages == 1 else 's'} there"
            )
        if r.unsupported:
            off = "; ".join(f"{k}: {v}" for k, v in sorted(r.unsupported.items()))
            notes.append(f"- {r.site}: detectors off: {off}")
        notes.append(f"- {r.site}: learned: {r.learned}")
        notes.extend(_recorded_notes(r))
    msgs = sum(r.messages for r in results)
    secs = sum(r.replay_s for r in results)
    notes.append(f"- replay of the base recordings: {msgs:,} messages in {secs:.1f} s = {msgs / secs:,.0f} msg/s")
    return "\n".join(lines + [""] + notes)
