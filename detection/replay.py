"""``eldercare replay RECORDING``: the whole detection core over a recording, in event time, with no servers.

A recording is JSONL, one wire message a line: ``{"t": received_ms, "topic": ..., "payload": "<exact wire
payload as a JSON string>"}`` (the simulator's format; bytes that are not UTF-8 come as ``"payload_b64"``).
Each line goes through the same :func:`gateway.contract.decode_message` as live traffic, then
:meth:`Engine.process`; timers fire in event time
as the recording's clock moves, so a week of a home replays in well under a second.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np

from detection.capabilities import is_entrance
from detection.config import DetectConfig
from detection.detectors.base import BEHAVIOURAL
from detection.detectors.offline import EVENT_DRIVEN
from detection.engine import Engine
from detection.errors import RecordingError
from detection.fusion import DEVICE_HEALTH, Fusion, IncidentUpdate
from detection.homes import HomeRegistry
from detection.models import LIFE_SAFETY_TYPES, Alert, AlertType, CheckIn
from detection.rhythm import RhythmTally
from detection.state import NEVER
from gateway.contract import decode_message
from gateway.errors import DecodeError
from gateway.models import EXPECTED_CADENCE_S, DeviceKind

Message = tuple[int, str, bytes]


class _Line(msgspec.Struct):
    t: int
    topic: str
    payload: str | dict[str, Any]
    """The wire payload as a JSON string (exact bytes), or, as many hand-made recordings have it, as a JSON object
    (re-encoded compactly: the contract's decoding does not depend on spacing or key order)."""
    payload_b64: str | None = None
    """Set instead of ``payload`` when the wire bytes were not UTF-8 (a malformed device message)."""


_LINE = msgspec.json.Decoder(_Line)
_ENCODE = msgspec.json.Encoder().encode


class Unreadable(msgspec.Struct, kw_only=True):
    """Recording lines that could not be read and were skipped."""

    count: int = 0
    first: list[tuple[int, str]] = msgspec.field(default_factory=list)
    """The first :data:`UNREADABLE_KEPT` of them: (1-based line number, reason)."""


UNREADABLE_KEPT = 20


def _parse(raw: bytes, path: str, n: int, skipped: Unreadable | None) -> Message | None:
    """One recording line as a message; None for a blank line or one counted in ``skipped``."""
    if not raw.strip():
        return None
    try:
        line = _LINE.decode(raw)
        if line.payload_b64 is not None:
            payload = base64.b64decode(line.payload_b64, validate=True)
        elif type(line.payload) is str:
            payload = line.payload.encode()
        else:
            payload = _ENCODE(line.payload)
    except (msgspec.DecodeError, binascii.Error) as exc:
        reason = f"payload_b64 is not base64: {exc}" if isinstance(exc, binascii.Error) else str(exc)
        if skipped is None:
            raise RecordingError(path, n, reason) from None
        skipped.count += 1
        if len(skipped.first) < UNREADABLE_KEPT:
            skipped.first.append((n, reason))
        return None
    return line.t, line.topic, payload


def _open(p: Path) -> IO[bytes]:
    try:
        return p.open("rb")
    except OSError as exc:
        raise RecordingError(str(p), 0, f"cannot open: {exc}") from None


class StepBack(msgspec.Struct, frozen=True, kw_only=True):
    """Where a recording first goes back in time."""

    line: int
    before_ms: int
    t_ms: int


class OutOfOrder(Exception):
    """Raised by :func:`read_recording` with ``in_order=True`` where the recording first goes back in time."""

    def __init__(self, step: StepBack) -> None:
        super().__init__(f"line {step.line}: t goes back from {step.before_ms} to {step.t_ms}")
        self.step = step


def read_recording(path: str | Path, *, skipped: Unreadable | None = None, in_order: bool = False) -> Iterator[Message]:
    """Yield ``(received_ms, topic, payload bytes)`` from a JSONL recording, in file order.

    A line that cannot be read raises :class:`RecordingError`, or, when ``skipped`` is given, is counted there and
    passed over so that the rest of the recording still counts (a recorder killed mid-line leaves a
    truncated last line; one bad line must not cost a month of a home). A file that cannot be opened always raises.
    ``in_order`` raises :class:`OutOfOrder` at the first message whose ``t`` is before the one before it.
    """
    p = Path(path)
    prev = -(2**63)
    with _open(p) as fh:
        for n, raw in enumerate(fh, start=1):
            msg = _parse(raw, str(p), n, skipped)
            if msg is not None:
                if in_order:
                    if msg[0] < prev:
                        raise OutOfOrder(StepBack(line=n, before_ms=prev, t_ms=msg[0]))
                    prev = msg[0]
                yield msg


class _T(msgspec.Struct):
    t: int


_T_ONLY = msgspec.json.Decoder(_T)


def time_order(path: str | Path) -> tuple[StepBack | None, np.ndarray]:
    """Check that ``t`` never decreases; return the first step back (None: in order) and the lines' time order.

    The order is an array of (byte offset, line number) rows, sorted stably by ``t`` (empty when in order). A line
    whose ``t`` cannot be read keeps its place after the line before it (it is reported when read).
    """
    p = Path(path)
    first: StepBack | None = None
    ts = array("q")
    offsets = array("q")
    prev: int | None = None
    offset = 0
    with _open(p) as fh:
        for raw in fh:
            t: int | None = None
            if raw.strip():
                with contextlib.suppress(msgspec.DecodeError):
                    t = _T_ONLY.decode(raw).t
            if t is None:
                t = prev if prev is not None else -(2**62)
            elif first is None and prev is not None and t < prev:
                first = StepBack(line=len(ts) + 1, before_ms=prev, t_ms=t)
            ts.append(t)
            offsets.append(offset)
            offset += len(raw)
            prev = t
    if first is None:
        return None, np.empty((0, 2), dtype=np.int64)
    order = np.argsort(np.frombuffer(ts, dtype=np.int64), kind="stable")
    rows = np.column_stack([np.frombuffer(offsets, dtype=np.int64)[order], order + 1])
    return first, rows


def read_in_time_order(path: str | Path, rows: np.ndarray, *, skipped: Unreadable | None = None) -> Iterator[Message]:
    """Yield the recording's messages in the order of :func:`time_order` (stable by ``t``)."""
    p = Path(path)
    with _open(p) as fh:
        for offset, n in rows.tolist():
            fh.seek(offset)
            msg = _parse(fh.readline(), str(p), n, skipped)
            if msg is not None:
                yield msg


class ReplayResult(msgspec.Struct, kw_only=True):
    """Outcome of one replay."""

    updates: list[IncidentUpdate]
    messages: int
    readings: int
    rejected: dict[str, int]
    """Messages the contract refused, by reason (they count in ``messages``, not in ``readings``)."""
    rejected_example: dict[str, str] = msgspec.field(default_factory=dict)
    """Per reason, the first refused message's topic and the decoder's explanation."""
    seconds: float
    first_ms: int
    last_ms: int
    rhythm: RhythmTally = msgspec.field(default_factory=RhythmTally)
    """Per home: events by local hour as replayed, and hours away (``detection.rhythm``: is the clock right?)."""
    checkins: list[CheckIn] = msgspec.field(default_factory=list)
    """Every check-in step (prompt, answered, paged), in order."""
    spans: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    """Per home: arrival time of its first and last decoded message."""
    unreadable: Unreadable = msgspec.field(default_factory=Unreadable)
    """Recording lines that could not be read and were skipped (:func:`replay`)."""
    doors_without_room: dict[str, int] = msgspec.field(default_factory=dict)
    """Homes with two door contacts or more that no registry entry or payload gives a room: each of them is taken
    for the entrance door (a cupboard opened at night reads as the elder leaving)."""
    never_heard: list[str] = msgspec.field(default_factory=list)
    """Homes of the registry without a single decoded message in the recording (:func:`replay`)."""
    reordered: StepBack | None = None
    """Where the recording first went back in time, if it did: it was replayed in time order (:func:`replay`)."""
    no_heartbeat: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Per home: event-driven devices (PIR, contacts, smoke, gas, call button) heard in the recording that never
    sent a ``status`` heartbeat although the home's span holds two of their heartbeat periods. Their liveness is
    read from heartbeats (docs/contract.md), so every quiet spell of the person longer than the offline limit calls
    them offline: their device notifications measure the person's quiet, not the device."""

    def quiet_offline(self) -> dict[str, int]:
        """Per home of :attr:`no_heartbeat`: device-offline notifications raised for those devices."""
        devices = {(site, d) for site, ds in self.no_heartbeat.items() for d in ds}
        counts = dict.fromkeys(self.no_heartbeat, 0)
        for u in self.updates:
            a = u.alert
            if u.notify and not a.clears and a.type is AlertType.DEVICE_OFFLINE and (a.site, a.device) in devices:
                counts[a.site] += 1
        return counts

    @property
    def alerts(self) -> list[Alert]:
        """Every alert raised, in order."""
        return [u.alert for u in self.updates]


def run(
    messages: Iterable[Message],
    *,
    registry: HomeRegistry | None,
    config: DetectConfig | None = None,
    end_ms: int | None = None,
    on_alert: Callable[[Alert], None] | None = None,
    homes_from_first_message: bool = False,
) -> ReplayResult:
    """Decode and detect over a message stream in arrival order; fire timers up to ``end_ms`` at the end.

    ``on_alert`` is called with each alert as soon as it is raised (while the stream is still being consumed).
    Every home of the registry is watched from the stream's first message (a home silent from the start is
    noticed), or, with ``homes_from_first_message``, each from its own first message (homes recorded at
    different times, put together in one file).
    """
    engine = Engine(registry=registry, config=config, sink=on_alert)
    fusion = Fusion()
    updates: list[IncidentUpdate] = []
    rejected: Counter[str] = Counter()
    examples: dict[str, str] = {}
    n = 0
    first = last = -1
    started = time.perf_counter()
    process = engine.process
    tz_ms = engine.config.tz_offset_s * 1000
    rhythm = RhythmTally()
    entrance = _entrance_doors(registry)
    registered = frozenset(registry.sites) if registry is not None else frozenset()
    first_by_site: dict[str, int] = {}
    last_by_site: dict[str, int] = {}
    for received_ms, topic, payload in messages:
        if n == 0:
            first = received_ms
            if not homes_from_first_message:
                engine.ensure_homes(received_ms)
        n += 1
        last = received_ms
        try:
            reading = decode_message(topic, payload, received_ms=received_ms, directory=registry)
        except DecodeError as exc:
            if not rejected[exc.reason.value]:
                examples[exc.reason.value] = f"{topic}: {exc.detail}"
            rejected[exc.reason.value] += 1
            continue
        site = reading.site
        if site not in first_by_site:
            first_by_site[site] = received_ms
        last_by_site[site] = received_ms
        for alert in process(reading):
            updates.append(fusion.add(alert))
        if reading.event is not None:
            if site in registered:
                front = (site, reading.device) in entrance
            else:  # no registry entry: the device as the engine learned it (its payload's room, if any)
                home = engine.homes.get(site)
                dev = home.devices.get(reading.device) if home is not None else None
                front = dev is not None and is_entrance(dev.kind, dev.room)
            rhythm.add(site, reading.time_ms + tz_ms, front)
    if end_ms is not None or last >= 0:
        for alert in engine.advance(end_ms if end_ms is not None else last):
            updates.append(fusion.add(alert))
    return ReplayResult(
        updates=updates,
        messages=n,
        readings=engine.readings,
        rejected=dict(rejected),
        rejected_example=examples,
        seconds=time.perf_counter() - started,
        first_ms=first,
        last_ms=last,
        rhythm=rhythm,
        checkins=list(engine.checkins),
        spans={site: (first_by_site[site], last_by_site[site]) for site in first_by_site},
        doors_without_room={
            site: n
            for site, home in engine.homes.items()
            if (n := sum(1 for d in home.devices.values() if d.kind is DeviceKind.DOOR and not d.room)) >= 2
        },
        no_heartbeat=_no_heartbeat(engine, first_by_site, last_by_site),
    )


def _no_heartbeat(engine: Engine, first: dict[str, int], last: dict[str, int]) -> dict[str, list[str]]:
    """Event-driven devices heard without a single heartbeat over at least two of their heartbeat periods."""
    out: dict[str, list[str]] = {}
    for site, home in engine.homes.items():
        if site not in first:
            continue
        span_ms = last[site] - first[site]
        quiet = sorted(
            name
            for name, d in home.devices.items()
            if d.kind in EVENT_DRIVEN
            and d.last_reading_ms != NEVER
            and d.last_status_ms == NEVER
            and span_ms >= 2 * EXPECTED_CADENCE_S[d.kind] * 1000
        )
        if quiet:
            out[site] = quiet
    return out


class HomeTally(msgspec.Struct, kw_only=True):
    """What one home's replay would have put in front of people (the JSONL holds every update besides)."""

    site: str
    days: float
    pages: int = 0
    """Behavioural alerts that reach a person: a new incident, a new condition or an escalation (not clears)."""
    prompts: int = 0
    """Check-in prompts: the elder asked first, through the home's devices."""
    answered: int = 0
    """... answered by the elder (activity or "I'm fine" within the window): no page."""
    life_safety: int = 0
    device: int = 0
    """Device-health notifications (offline, battery, tamper, not worn, fault)."""
    site_offline: int = 0
    other: int = 0
    """Anything else that notified (sleep apnoea episodes)."""
    learned_days: float = 0.0
    """Days of the recording after the home's first ``warmup_days`` (:func:`tally`): its own limits in force."""
    learned_pages: int = 0
    """Behavioural pages in those days."""

    @property
    def pages_per_month(self) -> float:
        """Behavioural pages per 30 days of the home's recording."""
        return self.pages / (self.days / 30.0) if self.days > 0 else 0.0

    @property
    def learned_pages_per_month(self) -> float | None:
        """Behavioural pages per 30 days after the warm-up (None when the recording is no longer than it)."""
        return self.learned_pages / (self.learned_days / 30.0) if self.learned_days > 0 else None


def tally(result: ReplayResult, *, warmup_days: float = 7.0) -> list[HomeTally]:
    """Per home, sorted: the updates that notify someone, by kind, and the check-ins, over the home's span.

    Counts the way ``eldercare evaluate`` does: an update counts when it notifies and does not clear; merged-away
    duplicates and clears are in the JSONL for the record but reach nobody. Pages are also counted apart after
    the home's first ``warmup_days`` (the grace period on population limits, ``DetectConfig.grace_days``), the
    span ``eldercare evaluate`` scores.
    """
    day = 86_400_000
    learned_from = {site: a + warmup_days * day for site, (a, _) in result.spans.items()}
    homes = {
        site: HomeTally(site=site, days=max(0, b - a) / day, learned_days=max(0.0, (b - a) / day - warmup_days))
        for site, (a, b) in sorted(result.spans.items())
    }
    for u in result.updates:
        a = u.alert
        h = homes.get(a.site)
        if h is None or a.clears or not u.notify:
            continue
        if a.type in BEHAVIOURAL:
            h.pages += 1
            h.learned_pages += a.time_ms >= learned_from[a.site]
        elif a.type in LIFE_SAFETY_TYPES:
            h.life_safety += 1
        elif a.type in DEVICE_HEALTH:
            h.device += 1
        elif a.type is AlertType.SITE_OFFLINE:
            h.site_offline += 1
        else:
            h.other += 1
    for c in result.checkins:
        h = homes.get(c.site)
        if h is not None:
            h.prompts += c.what == "prompt"
            h.answered += c.what == "answered"
    return list(homes.values())


def _entrance_doors(registry: HomeRegistry | None) -> frozenset[tuple[str, str]]:
    if registry is None:
        return frozenset()
    return frozenset(
        (site, d.device) for site, info in registry.sites.items() for d in info.devices if is_entrance(d.kind, d.room)
    )


def alert_record(u: IncidentUpdate, *, tz_offset_s: int = 8 * 3600) -> dict[str, Any]:
    """One JSONL output line: time, home, type, severity, explanation (+ incident bookkeeping)."""
    a = u.alert
    local = dt.datetime.fromtimestamp(a.time_ms / 1000, tz=dt.timezone(dt.timedelta(seconds=tz_offset_s)))
    return {
        "time_ms": a.time_ms,
        "time": local.isoformat(timespec="seconds"),
        "home": a.site,
        "type": a.type.value,
        "severity": a.severity.value,
        "explanation": a.explanation,
        "explanation_zh": a.explanation_zh,
        "device": a.device,
        "evidence": a.evidence,
        "clears": a.clears,
        "incident": u.incident,
        "incident_action": u.action,
        "incident_severity": u.severity.value,
        "notify": u.notify,
    }


def replay(
    recording: str | Path,
    registry: str | Path | HomeRegistry | None,
    out: str | Path | IO[str] | None,
    *,
    config: DetectConfig | None = None,
    strict: bool = False,
) -> ReplayResult:
    """Replay a recording file and write the alerts as JSONL to ``out`` (a path, an open text file, or None).

    ``registry`` is a ``registry.json`` path (from the simulator or an import file), a loaded registry, or None
    to accept every home and device seen. A line that cannot be read is skipped and listed in
    :attr:`ReplayResult.unreadable`; ``strict`` raises :class:`RecordingError` at the first one instead.

    A recording is replayed in time order even when its file is not (homes recorded apart and concatenated): the
    replay starts as the file streams and, at the first ``t`` before the one before it, starts again reading the
    lines in a stable order by ``t`` (:attr:`ReplayResult.reordered` says where the file first went back). Each
    home is watched from its own first message, so homes recorded in different months or years can share one file.
    """
    reg = HomeRegistry.load(registry) if isinstance(registry, str | Path) else registry
    skipped = None if strict else Unreadable()
    try:
        # a recording in time order (the usual case) is read once, as it streams
        result = run(
            read_recording(recording, skipped=skipped, in_order=True),
            registry=reg,
            config=config,
            homes_from_first_message=True,
        )
    except OutOfOrder:
        skipped = None if strict else Unreadable()
        step_back, rows = time_order(recording)
        result = run(
            read_in_time_order(recording, rows, skipped=skipped),
            registry=reg,
            config=config,
            homes_from_first_message=True,
        )
        result.reordered = step_back
    if reg is not None:
        result.never_heard = sorted(set(reg.sites) - set(result.spans))
    if skipped is not None:
        if skipped.count and result.messages == 0:
            line, reason = skipped.first[0]
            # not one line could be read: the wrong file, not a damaged recording
            raise RecordingError(str(recording), line, f"{reason} (no line of the file is a recording line)")
        result.unreadable = skipped
    tz = (config or DetectConfig()).tz_offset_s
    if out is not None:
        lines = (json.dumps(alert_record(u, tz_offset_s=tz), ensure_ascii=False) + "\n" for u in result.updates)
        if isinstance(out, str | Path):
            with Path(out).open("w", encoding="utf-8") as fh:
                fh.writelines(lines)
        else:
            out.writelines(lines)
    return result
