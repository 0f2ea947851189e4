"""The home gateway's own status: retained, with a Last Will of ``{"online": false}``."""

from __future__ import annotations

from typing import Final

import msgspec

from gateway.codecs._base import MAX_BACKFILL_MS, MAX_SEQ, MAX_TS_MS, clock_skewed, decode_json, fields_of
from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, MessageType, Reading, Topic


class GatewayStatus(msgspec.Struct, kw_only=True):
    """Gateway online state; ``seq``/``ts`` are absent in the broker-sent Last Will."""

    online: bool
    seq: int | None = None
    ts: int | None = None
    fw: str | None = None
    uptime_s: int | None = None


_DECODER: Final = msgspec.json.Decoder(GatewayStatus)

MAX_UPTIME_S: Final = 2**31 - 1
"""Longest uptime accepted (68 years): a larger one is a firmware bug, refused before it reaches storage."""


def decode(
    topic: Topic, payload: bytes, *, received_ms: int, max_skew_ms: int, max_backfill_ms: int = MAX_BACKFILL_MS
) -> Reading:
    """Decode a gateway status message (published on connect, and as the Last Will)."""
    if topic.type is not MessageType.STATUS:
        raise DecodeError(str(topic), Reason.UNSUPPORTED_TYPE, f"gateway sends no {topic.type.value}")
    obj: GatewayStatus = decode_json(_DECODER, payload, topic)  # the topic string is built only for an error
    if (obj.seq is not None and obj.seq < 0) or (obj.ts is not None and obj.ts < 0):
        raise DecodeError(str(topic), Reason.OUT_OF_RANGE, "seq and ts must not be negative")
    if obj.seq is not None and obj.seq > MAX_SEQ:
        raise DecodeError(str(topic), Reason.OUT_OF_RANGE, f"seq {obj.seq} outside 0..2^53")
    if obj.ts is not None and obj.ts > MAX_TS_MS:
        raise DecodeError(str(topic), Reason.OUT_OF_RANGE, f"ts {obj.ts} outside 0..2^53")
    if obj.uptime_s is not None and not 0 <= obj.uptime_s <= MAX_UPTIME_S:
        raise DecodeError(str(topic), Reason.OUT_OF_RANGE, f"uptime_s {obj.uptime_s} outside 0..{MAX_UPTIME_S}")
    fields = fields_of(obj)
    ts = obj.ts if obj.ts is not None else received_ms
    return Reading(
        site=topic.site,
        kind=DeviceKind.GATEWAY,
        device=topic.device,
        type=topic.type,
        seq=obj.seq,
        ts_ms=ts,
        received_ms=received_ms,
        fields=fields,
        event=None,
        clock_skewed=clock_skewed(ts, received_ms, max_skew_ms=max_skew_ms, max_backfill_ms=max_backfill_ms),
    )
