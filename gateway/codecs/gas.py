"""Gas detector (燃气报警器): alarm/test/silence/fault/clear events, heartbeat, battery, tamper.

Household detectors for natural gas (methane) or LPG; many close a gas valve themselves. ``lel`` is the
concentration the detector reports in % of the lower explosive limit (alarms typically trip at 8-25 %LEL).
"""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.codecs._hazard import Clear, Fault, Silence, Test
from gateway.models import DeviceKind, MessageType


class Alarm(Envelope, kw_only=True, tag_field="event", tag="alarm"):
    """Gas alarm sounding (life-safety)."""

    lel: int | None = None
    """Gas concentration, % of the lower explosive limit; optional."""
    valve_closed: bool | None = None
    """True when the detector closed the gas valve it controls; optional."""


class GasStatus(DeviceStatus, kw_only=True):
    """Heartbeat; ``mains`` tells a mains-powered detector (most are) from a battery one."""

    mains: bool | None = None


CODEC: Final = Codec(
    kind=DeviceKind.GAS,
    schemas={
        MessageType.EVENT: Alarm | Test | Silence | Clear | Fault,
        MessageType.STATUS: GasStatus,
    },
    ranges={"lel": (0, 100), **STATUS_RANGES},
)
decode: Final = CODEC.decode
