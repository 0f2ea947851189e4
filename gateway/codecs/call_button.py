"""Emergency call button (一键呼叫): press/cancel events, heartbeat, battery."""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.models import DeviceKind, MessageType


class Press(Envelope, kw_only=True, tag_field="event", tag="press"):
    """Button pressed: the elder calls for help (life-safety)."""


class Cancel(Envelope, kw_only=True, tag_field="event", tag="cancel"):
    """The elder cancelled a press (e.g. accidental press)."""


CODEC: Final = Codec(
    kind=DeviceKind.CALL_BUTTON,
    schemas={MessageType.EVENT: Press | Cancel, MessageType.STATUS: DeviceStatus},
    ranges=STATUS_RANGES,
)
decode: Final = CODEC.decode
