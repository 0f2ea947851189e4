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
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from detection.capabilities import is_entrance
from detection.config import DetectConfig
from detection.detectors.base import BEHAVIOURAL
from detection.engine import Engine
from detection.errors import RecordingError
from detection.fusion import DEVICE_HEALTH, Fusion, IncidentUpdate
from detection.homes import HomeRegistry
from detection.models import LIFE_SAFETY_TYPES, Alert, AlertType, CheckIn
from detection.rhythm import RhythmTally
from gateway.contract import decode_message
from gateway.errors import DecodeError

Message = tuple[int, str, bytes]


class _Line(msgspec.Struct):
    t: int
    topic: str
    payload: str
    payload_b64: str | None = None
    """Set instead of ``payload`` when the wire bytes were not UTF-8 (a malformed device message)."""


_LINE = msgspec.json.Decoder(_Line)


class Unreadable(msgspec.Struct, kw_only=True):
    """Recording lines that could not be read and were skipped."""

    count: int = 0
    first: list[tuple[int, str]] = msgspec.field(default_factory=list)
    """The first :data:`UNREADABLE_KEPT` of them: (1-based line number, reason)."""


UNREADABLE_KEPT = 20


def read_recording(path: str | Path, *, skipped: Unreadable | None = None) -> Iterator[Message]:
    """Yield ``(received_ms, topic, payload bytes)`` from a JSONL recording.

    A line that cannot be read raises :class:`RecordingError`, or, when ``skipped`` is given, is counted there and
    passed over so that the rest of the recording still counts (a recorder killed mid-line leaves a
    truncated last line; one bad line must not cost a month of a home). A file that cannot be opened always raises.
    """
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise RecordingError(str(p), 0, f"cannot open: {exc}") from None
    with fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = _LINE.decode(raw)
                payload = (
                    line.payload.encode()
                    if line.payload_b64 is None
                    else base64.b64decode(line.payload_b64, validate=True)
                )
            except (msgspec.DecodeError, binascii.Error) as exc:
                reason = f"payload_b64 is not base64: {exc}" if isinstance(exc, binascii.Error) else str(exc)
                if skipped is None:
                    raise RecordingError(str(p), n, reason) from None
                skipped.count += 1
                if len(skipped.first) < UNREADABLE_KEPT:
                    skipped.first.append((n, reason))
                continue
            yield line.t, line.topic, payload


class ReplayResult(msgspec.Struct, kw_only=True):
    """Outcome of one replay."""

    updates: list[IncidentUpdate]
    messages: int
    readings: int
    rejected: dict[str, int]
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
) -> ReplayResult:
    """Decode and detect over a message stream in arrival order; fire timers up to ``end_ms`` at the end.

    ``on_alert`` is called with each alert as soon as it is raised (while the stream is still being consumed).
    """
    engine = Engine(registry=registry, config=config, sink=on_alert)
    fusion = Fusion()
    updates: list[IncidentUpdate] = []
    rejected: Counter[str] = Counter()
    n = 0
    first = last = -1
    started = time.perf_counter()
    process = engine.process
    tz_ms = engine.config.tz_offset_s * 1000
    rhythm = RhythmTally()
    entrance = _entrance_doors(registry)
    first_by_site: dict[str, int] = {}
    last_by_site: dict[str, int] = {}
    for received_ms, topic, payload in messages:
        if n == 0:
            first = received_ms
            engine.ensure_homes(received_ms)
        n += 1
        last = received_ms
        try:
            reading = decode_message(topic, payload, received_ms=received_ms, directory=registry)
        except DecodeError as exc:
            rejected[exc.reason.value] += 1
            continue
        site = reading.site
        if site not in first_by_site:
            first_by_site[site] = received_ms
        last_by_site[site] = received_ms
        if reading.event is not None:
            rhythm.add(reading.site, reading.time_ms + tz_ms, (reading.site, reading.device) in entrance)
        for alert in process(reading):
            updates.append(fusion.add(alert))
    if end_ms is not None or last >= 0:
        for alert in engine.advance(end_ms if end_ms is not None else last):
            updates.append(fusion.add(alert))
    return ReplayResult(
        updates=updates,
        messages=n,
        readings=engine.readings,
        rejected=dict(rejected),
        seconds=time.perf_counter() - started,
        first_ms=first,
        last_ms=last,
        rhythm=rhythm,
        checkins=list(engine.checkins),
        spans={site: (first_by_site[site], last_by_site[site]) for site in first_by_site},
    )


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

    @property
    def pages_per_month(self) -> float:
        """Behavioural pages per 30 days of the home's recording."""
        return self.pages / (self.days / 30.0) if self.days > 0 else 0.0


def tally(result: ReplayResult) -> list[HomeTally]:
    """Per home, sorted: the updates that notify someone, by kind, and the check-ins, over the home's span.

    Counts the way ``eldercare evaluate`` does: an update counts when it notifies and does not clear; merged-away
    duplicates and clears are in the JSONL for the record but reach nobody.
    """
    homes = {
        site: HomeTally(site=site, days=max(0, b - a) / 86_400_000) for site, (a, b) in sorted(result.spans.items())
    }
    for u in result.updates:
        a = u.alert
        h = homes.get(a.site)
        if h is None or a.clears or not u.notify:
            continue
        if a.type in BEHAVIOURAL:
            h.pages += 1
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
    """
    reg = HomeRegistry.load(registry) if isinstance(registry, str | Path) else registry
    skipped = None if strict else Unreadable()
    result = run(read_recording(recording, skipped=skipped), registry=reg, config=config)
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
