"""Realism calibrated on real homes (issue 19, item 6): event-driven PIRs, naps and long sits, lying awake before
getting up, visitors, day-to-day variability; read back from the messages the way the backend sees them."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from detection.realdata.compare import HomeStats, read_wire, summarise
from firmware_sim.models import MINUTE_MS, TZ_OFFSET_MS, State
from firmware_sim.scenario import Simulation, generate

Msg = tuple[int, str, bytes]
AWAKE_AT_HOME = {State.HOME, State.KITCHEN, State.TOILET, State.SITTING, State.DOZING}
"""Out of bed at home: the living-room PIR may see the elder (a doze in the armchair, rarely)."""


@pytest.fixture(scope="module")
def normal() -> tuple[Simulation, list[Msg]]:
    sim = generate(homes=16, days=14, seed=19, mix="normal", mattress_cadence_s=60)
    return sim, list(sim.messages())


def _motion(msgs: list[Msg], site: str) -> list[tuple[int, str, dict[str, object]]]:
    prefix = f"ec/v1/{site}/motion/pir1/"
    return [(t, topic.rsplit("/", 1)[1], msgspec.json.decode(p)) for t, topic, p in msgs if topic.startswith(prefix)]


def test_most_pirs_report_events_with_sparse_heartbeats(normal: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = normal
    event_driven = 0
    per_day: list[float] = []
    for spec, plan in zip(sim.homes, sim.plans, strict=True):
        motion = _motion(msgs, spec.site)
        if any(kind == "telemetry" for _, kind, _ in motion):
            continue  # the counting firmware
        event_driven += 1
        beats = [body["ts"] for _, kind, body in motion if kind == "status"]
        assert isinstance(beats[0], int)
        gaps = np.diff(np.array(beats, dtype=np.int64)) / MINUTE_MS
        # One heartbeat every 50–60 min (the contract's motion cadence is 1 h), a few lost on the radio.
        assert 50 <= np.median(gaps) <= 60, (spec.site, gaps)
        skewed = any(i.type == "clock_skew" and i.site == spec.site for i in sim.ground_truth)
        events = [int(body["ts"]) for _, kind, body in motion if kind == "event"]  # type: ignore[call-overload]
        per_day.append(len(events) / 14)
        if skewed or spec.profile.living != "alone":
            continue
        # Living alone, the PIR fires only while the elder is up at home or a visitor is in: never in bed, never out.
        for t in events:
            # Device time is true time plus the device's clock offset (σ 0.8 s): look a few seconds either side.
            near = (t - 5_000, t, t + 5_000)
            visitor = any(a <= x < b for a, b in plan.visits for x in near)
            assert visitor or any(plan.state_at(x) in AWAKE_AT_HOME for x in near), (spec.site, t, plan.state_at(t))
    assert event_driven >= len(sim.homes) // 2
    assert np.median(per_day) > 50  # reports on change: many a day (a bedbound elder's PIR sees little)


ROOMS = {"pir1": "living", "door1": "entrance", "mat1": "bedroom", "btn1": "living"}
"""The simulated homes' devices that real homes also have, by room (the wristband is left out: real homes have none)."""


def _stats(sim: Simulation, msgs: list[Msg]) -> list[HomeStats]:
    wires = read_wire(msgs, ROOMS)
    keep = [s.site for s in sim.homes if s.profile.living == "alone" and not s.profile.bedbound]
    return [
        summarise(site, wires[site], tz_offset_ms=TZ_OFFSET_MS, start_ms=sim.start_ms, end_ms=sim.end_ms)
        for site in keep
    ]


def test_naps_and_long_sits_leave_daytime_quiet_spells(normal: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = normal
    naps = [
        (b - a) / MINUTE_MS
        for plan in sim.plans
        for (a, s), (b, _) in zip(plan.points, plan.points[1:], strict=False)
        if s == State.NAP
    ]
    # Each elder's naps are log-normal around their own median of 100–200 min (real older adults doze 1–3 h).
    assert naps and 90 <= np.median(naps) <= 200
    stats = _stats(sim, msgs)
    spells = [x for h in stats for v in h.quiet_spells.values() for x in v]
    longest = [x for h in stats for x in h.quiet_longest["afternoon"]]
    # Real homes (docs/simulator.md): spells > 15 min have a median of 32–48 min; the longest in an afternoon 57 min
    # in the young development homes, 140 min in the older adult's (66 min here before the afternoons were calibrated).
    assert 20 <= np.median(spells) <= 60
    assert 75 <= np.median(longest) <= 170
    assert np.percentile(spells, 95) >= 90  # the long TV sits and dozes in the armchair


def test_armchair_dozes_are_long_and_unbroken(normal: tuple[Simulation, list[Msg]]) -> None:
    """After lunch the elders doze in the armchair for 1–3 h, as the real older adult does (docs/simulator.md).

    No walk breaks a doze (the walks of a long sit), so the PIR sees a doze as one long quiet spell; and read back
    from the messages, most homes have afternoons with a quiet spell of 90 min or more on a good share of days.
    """
    sim, msgs = normal
    dozes = [
        (plan.spec.site, a, b)
        for plan in sim.plans
        for (a, s), (b, _) in zip(plan.points, plan.points[1:], strict=False)
        if s == State.DOZING
    ]
    assert len(dozes) >= 20
    assert 75 <= np.median([(b - a) / MINUTE_MS for _, a, b in dozes]) <= 200
    # A doze ends when the elder gets up from it (10–30 min about the flat), never in a short walk back to the chair.
    walks = [
        (plan.spec.site, t)
        for plan in sim.plans
        for (_, s), (t, _), (back, after) in zip(plan.points, plan.points[1:], plan.points[2:], strict=False)
        if s == State.DOZING and after in (State.SITTING, State.DOZING) and back - t < 10 * MINUTE_MS
    ]
    assert not walks
    unbroken = []
    # Signs of someone inside, read as the summariser reads real homes (PIR, doors, bed, button; not heartbeats).
    wires = read_wire(msgs, ROOMS)
    events = {site: np.array([x.t for x in wire.activity], dtype=np.int64) for site, wire in wires.items()}
    alone = {spec.site for spec in sim.homes if spec.profile.living == "alone"}  # a spouse moves about
    visits = {plan.spec.site: plan.visits for plan in sim.plans}
    for site, a, b in dozes:
        if b - a < 60 * MINUTE_MS or site not in alone or any(s < b and e > a for s, e in visits[site]):
            continue
        # Quiet from the doze's start to its end, but for a rare trigger of the PIR: the longest silence inside it.
        inside = events[site][(events[site] > a + MINUTE_MS) & (events[site] < b - MINUTE_MS)]
        edges = np.concatenate(([a], inside, [b]))
        unbroken.append(float(np.diff(edges).max()) / (b - a))
    assert len(unbroken) >= 10
    assert np.median(unbroken) >= 0.9, sorted(unbroken)
    share = []
    for h in _stats(sim, msgs):
        longest = h.quiet_longest["afternoon"]
        if longest:
            share.append(np.mean(np.array(longest) >= 90))
    # Real older adult (HomeAssist Home1): 90 % of afternoons hold a quiet spell of 80 min or more.
    assert np.median(share) >= 0.4, share


def test_awake_in_bed_before_getting_up_and_variable_mornings(normal: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = normal
    before = total = 0
    for spec, plan in zip(sim.homes, sim.plans, strict=True):
        if spec.profile.bedbound:
            continue
        for wake in plan.wake[:-1]:
            total += 1
            before += plan.state_at(wake - MINUTE_MS) == State.BED_AWAKE
    assert 0.5 <= before / total <= 0.9
    sds = [h.wake_sd for h in _stats(sim, msgs) if h.wake_sd is not None]
    assert sds and np.median(sds) >= 25  # day-to-day spread, as read from the messages


def test_visitors_move_about(normal: tuple[Simulation, list[Msg]]) -> None:
    sim, msgs = normal
    seen = 0
    for spec, plan in zip(sim.homes, sim.plans, strict=True):
        events = [t for t, kind, _ in _motion(msgs, spec.site) if kind in ("event", "telemetry")]
        for a, b in plan.visits:
            if plan.state_at(a) in AWAKE_AT_HOME and any(a <= t < b for t in events):
                seen += 1
    assert seen >= 5


def test_a_long_absence_with_the_home_looked_after_pages_out_not_back_at_most_once() -> None:
    """Calibrated on a real home's stay away (HomeAssist Home1): the empty home visited for 5–40 min every few days.

    On the wire each visit is a door opening, living-room motion and a door opening again; replayed through the real
    engine, the absence pages out-not-back at most once (each visit re-armed it before) and nothing the absence
    forbids (inactivity, not up, night door ...) is raised.
    """
    from detection.homes import HomeRegistry
    from detection.replay import run

    sim = generate(homes=4, days=12, seed=59, mix="incident-rich")  # h0004: away 4 days, looked after 3 times
    plan = next(p for p in sim.plans if p.spec.site == "h0004")
    [away] = [i for i in plan.incidents if i.type == "long_absence"]
    assert len(plan.sitter_visits) == 3 and "looked after 3 time(s)" in away.notes
    msgs = [m for m in sim.messages() if m[1].startswith("ec/v1/h0004/")]
    for a, b in plan.sitter_visits:
        assert a >= away.start_ms + 12 * 3_600_000 and b <= away.end_ms
        window = [(topic.split("/")[3], topic.rsplit("/", 1)[1], p) for t, topic, p in msgs if a - 60_000 <= t <= b]
        doors = [k for k, kind, _ in window if (k, kind) == ("door", "event")]
        moved = [p for k, kind, p in window if (k, kind) in (("motion", "event"), ("motion", "telemetry"))]
        moved = [p for p in moved if b'"count":0' not in p]
        assert len(doors) >= 2 and moved, window  # in (open, close) and about the living room
    result = run(msgs, registry=HomeRegistry.from_mapping(sim.registry), end_ms=sim.end_ms)
    inside = [x for x in result.alerts if away.start_ms <= x.time_ms <= away.end_ms and not x.clears]
    assert [x.type.value for x in inside if x.type.value in away.forbid] == []
    assert sum(x.type.value == "out_not_back" for x in inside) <= 1  # 4 with `visit_max_min=0` (a page per visit)
    returns = [x for x in result.alerts if x.type.value == "out_not_back" and x.clears]
    assert [x for x in returns if any(a <= x.time_ms <= b for a, b in plan.sitter_visits)]  # the engine saw a visit
