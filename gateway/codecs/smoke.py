"""Smoke detector (烟感): alarm/test/silence/fault/clear events, heartbeat, battery, tamper."""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.codecs._hazard import Clear, Fault, Silence, Test
from gateway.models import DeviceKind, MessageType


class Alarm(Envelope, kw_only=True, tag_field="event", tag="alarm"):
    """Smoke alarm sounding (life-safety)."""

    level: int | None = None
    """Smoke obscuration reported by the sensor, %/m; optional."""


class SmokeStatus(DeviceStatus, kw_only=True):
    """Heartbeat plus the chamber temperature many detectors report."""

    temp: float | None = None
    """Temperature, °C."""


CODEC: Final = Codec(
    kind=DeviceKind.SMOKE,
    schemas={
        MessageType.EVENT: Alarm | Test | Silence | Clear | Fault,
        MessageType.STATUS: SmokeStatus,
    },
    ranges={"level": (0, 100), "temp": (-40, 150), **STATUS_RANGES},
)
decode: Final = CODEC.decode
