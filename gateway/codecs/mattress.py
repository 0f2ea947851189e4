"""Smart mattress (智能床垫): occupancy, heart and breathing rate, body movement."""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.models import DeviceKind, MessageType


class MattressTelemetry(Envelope, kw_only=True):
    """Periodic sample, every 10–30 s."""

    occupied: bool
    hr: float | None = None
    """Heart rate, bpm; null when out of bed or no signal."""
    rr: float | None = None
    """Breathing rate, breaths/min; null when out of bed or no signal."""
    movement: int | None = None
    """Body movement intensity over the sample window, 0–100."""


class InBed(Envelope, kw_only=True, tag_field="event", tag="in_bed"):
    """Occupancy changed to in bed (sent immediately)."""


class OutOfBed(Envelope, kw_only=True, tag_field="event", tag="out_of_bed"):
    """Occupancy changed to out of bed (sent immediately)."""


class Apnea(Envelope, kw_only=True, tag_field="event", tag="apnea"):
    """Breathing pause detected by the mattress."""

    duration_s: float


CODEC: Final = Codec(
    kind=DeviceKind.MATTRESS,
    schemas={
        MessageType.TELEMETRY: MattressTelemetry,
        MessageType.EVENT: InBed | OutOfBed | Apnea,
        MessageType.STATUS: DeviceStatus,
    },
    ranges={"hr": (0, 300), "rr": (0, 80), "movement": (0, 100), "duration_s": (0, 600), **STATUS_RANGES},
)
decode: Final = CODEC.decode
