"""The home gateway's own status: retained, with a Last Will of ``{"online": false}``."""

from __future__ import annotations

from typing import Final

import msgspec

from gateway.codecs._base import MAX_BACKFILL_MS, clock_skewed
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


def decode(
    topic: Topic, payload: bytes, *, received_ms: int, max_skew_ms: int, max_backfill_ms: int = MAX_BACKFILL_MS
) -> Reading:
    """Decode a gateway status message (published on connect, and as the Last Will)."""
    where = str(topic)
    if topic.type is not MessageType.STATUS:
        raise DecodeError(where, Reason.UNSUPPORTED_TYPE, f"gateway sends no {topic.type.value}")
    try:
        obj = _DECODER.decode(payload)
    except msgspec.ValidationError as exc:
        raise DecodeError(where, Reason.BAD_SCHEMA, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(where, Reason.BAD_JSON, str(exc)) from None
    if (obj.seq is not None and obj.seq < 0) or (obj.ts is not None and obj.ts < 0):
        raise DecodeError(where, Reason.OUT_OF_RANGE, "seq and ts must not be negative")
    fields: dict[str, bool | int | float | str] = {"online": obj.online}
    if obj.fw is not None:
        fields["fw"] = obj.fw
    if obj.uptime_s is not None:
        fields["uptime_s"] = obj.uptime_s
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
