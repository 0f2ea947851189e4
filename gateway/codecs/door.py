"""Door contact (智能门磁): open/close events, heartbeat, battery, tamper."""

from __future__ import annotations

from typing import Final

from gateway.codecs._base import STATUS_RANGES, Codec, DeviceStatus, Envelope
from gateway.models import DeviceKind, MessageType


class Open(Envelope, kw_only=True, tag_field="event", tag="open"):
    """Door opened."""

    room: str | None = None
    """Where the contact is: ``entrance`` for the front door, else the room or thing it closes (``bathroom``,
    ``kitchen``, ``fridge``...). Optional; the registry's room wins. A contact without a room anywhere is taken
    for the entrance door."""


class Close(Envelope, kw_only=True, tag_field="event", tag="close"):
    """Door closed."""

    room: str | None = None


CODEC: Final = Codec(
    kind=DeviceKind.DOOR,
    schemas={MessageType.EVENT: Open | Close, MessageType.STATUS: DeviceStatus},
    ranges=STATUS_RANGES,
)
decode: Final = CODEC.decode
