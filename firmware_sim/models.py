"""Domain types of the simulator: elder profiles, homes, incidents (ground truth) and scenario mixes."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Final

DEFAULT_START_MS: Final = 1_772_380_800_000
"""2026-03-02 00:00 Asia/Shanghai (2026-03-01 16:00 UTC): default start so recordings are reproducible."""

TZ_OFFSET_MS: Final = 8 * 3600 * 1000
"""Asia/Shanghai is UTC+8 all year (no DST); routines are planned in local time."""

DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
GAS_DEVICE: Final = "gas1"
"""Device id of every home's gas detector (kitchen); it has random streams of its own."""


class Mix(StrEnum):
    """Scenario mix of a home: how often incidents and device faults happen."""

    NORMAL = "normal"
    INCIDENT_RICH = "incident-rich"
    DEVICE_FAULTY = "device-faulty"


class State(IntEnum):
    """What the elder is doing; devices render their messages from this timeline."""

    SLEEP = 0
    """In bed, asleep (night)."""
    NAP = 1
    """In bed, asleep (daytime nap)."""
    BED_AWAKE = 2
    """In bed, awake: lying in, unwell, or bedbound resting."""
    HOME = 3
    """Awake at home, moving around."""
    KITCHEN = 4
    """Cooking or eating in the kitchen."""
    TOILET = 5
    """In the bathroom (night toilet trips included)."""
    OUT = 6
    """Away from home for hours (shopping, visiting, wandering)."""
    FLOOR = 7
    """Lying on the floor after a fall, not moving."""
    AWAY = 8
    """Away for days (hospital stay, visiting family)."""
    SITTING = 9
    """Awake but still (watching TV, sitting); little motion."""
    DOZING = 10
    """Asleep in the armchair (the after-lunch nap out of bed): the mattress sees nothing, the PIR hardly anything."""


IN_BED: Final = frozenset({State.SLEEP, State.NAP, State.BED_AWAKE})
ABSENT: Final = frozenset({State.OUT, State.AWAY})


@dataclass(frozen=True, slots=True)
class Profile:
    """Who the elder is and how their days go; drawn once per home from the seeded generator."""

    age: int
    gender: str
    living: str
    """``alone`` (独居) or ``couple`` (空巢: two elders, the devices track the first)."""
    bedbound: bool
    dementia: bool
    wake_min: float
    """Mean wake time, minutes after local midnight."""
    wake_sd: float
    bed_min: float
    """Mean bedtime, minutes after local midnight."""
    bed_sd: float
    toilet_rate: float
    """Mean night toilet trips per night."""
    nap_prob: float
    outing_prob: float
    visitor_prob: float
    rest_hr: float
    rest_rr: float
    band_off_at_night: bool
    """Takes the wristband off (to charge) at bedtime and puts it on after waking."""
    lie_in_prob: float = 0.0
    """Share of days the elder stays in bed 30–120 min past the usual wake time (day-to-day variability)."""
    sit_break_min: float = 45.0
    """Mean minutes between getting up (kitchen, toilet, a walk round the flat) during a long sit or TV session."""
    chair_nap_prob: float = 0.0
    """Share of naps taken dozing in the armchair rather than in bed."""

    @property
    def categories(self) -> list[str]:
        """Registry categories in the seed plans' terms."""
        out = ["独居" if self.living == "alone" else "空巢"]
        if self.bedbound:
            out.append("失能")
        if self.dementia:
            out.append("失智")
        if self.age >= 80:
            out.append("高龄")
        return out

    @property
    def ability_level(self) -> int:
        """GB/T 42195-2022 ability level implied by the profile (0 intact … 4 fully dependent)."""
        if self.bedbound:
            return 3
        if self.dementia:
            return 2
        return 1 if self.age >= 85 else 0


@dataclass(frozen=True, slots=True)
class Incident:
    """One ground-truth incident: what happened, when, and which alert types should (and should not) follow.

    Alert types are the plain string values of the backend's ``AlertType`` (the simulator imports nothing
    from the backend).
    """

    id: str
    site: str
    type: str
    start_ms: int
    end_ms: int
    expect: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    device: str | None = None
    notes: str = ""
    undeliverable: tuple[tuple[str, str], ...] = ()
    """(alert type, reason) pairs the incident would call for but the system cannot raise in its window,
    because the evidence never reaches the backend (band on the charger, device offline) or arrives only
    after the window (queued behind an internet outage). Evaluation does not count them as misses."""

    def to_json(self) -> dict[str, object]:
        """Plain dict for the ground-truth file."""
        return {
            "id": self.id,
            "site": self.site,
            "type": self.type,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "expect": list(self.expect),
            "forbid": list(self.forbid),
            "undeliverable": [{"alert": a, "reason": r} for a, r in self.undeliverable],
            "device": self.device,
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class Malformed:
    """Ground truth of one malformed message a cheap device sends: what it is and why the backend must refuse it.

    ``reason`` is the plain string value of the backend's dead-letter ``Reason`` (``bad_json``, ``bad_schema``,
    ``out_of_range``, ``unknown_device``); the message is delivered exactly once (never lost or duplicated).
    """

    id: str
    site: str
    kind: str
    """Device kind whose firmware sent it."""
    device: str
    """Device id on the topic (an unregistered id for ``unknown_device``)."""
    fault: str
    """``truncated``, ``wrong_type``, ``missing_field``, ``out_of_range``, ``unknown_device`` or ``non_utf8``."""
    reason: str
    sent_ms: int
    """True time the device sent it (its received time is a few hundred ms later)."""
    topic: str
    payload: bytes

    def to_json(self) -> dict[str, object]:
        """Plain dict for the ground-truth file (``payload`` as text, or ``payload_b64`` if not UTF-8)."""
        out: dict[str, object] = {
            "id": self.id,
            "site": self.site,
            "kind": self.kind,
            "device": self.device,
            "fault": self.fault,
            "reason": self.reason,
            "sent_ms": self.sent_ms,
            "topic": self.topic,
        }
        try:
            out["payload"] = self.payload.decode()
        except UnicodeDecodeError:
            out["payload_b64"] = base64.b64encode(self.payload).decode()
        return out


@dataclass(frozen=True, slots=True)
class HomeSpec:
    """One simulated home: ids, place in the hierarchy, its elder's profile and mix."""

    index: int
    site: str
    gateway: str
    grid: str
    mix: Mix
    profile: Profile
    devices: dict[str, str] = field(default_factory=dict)
    """Device id by kind (one device per kind)."""
