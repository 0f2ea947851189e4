"""Shared pieces of the per-kind decoders: envelope, status schema, range checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, FieldValue, MessageType, Reading, Topic
from gateway.rooms import NAMES as ROOM_NAMES
from gateway.rooms import room_or_none

MAX_SEQ: Final = 2**53
"""Largest sequence number accepted (JSON-safe integer range)."""

MAX_TS_MS: Final = 2**53
"""Largest device time accepted (epoch ms, the year 287,396): beyond it a ``ts`` is no time at all, and a
difference with it could leave the 64-bit integers of storage and of the engine's snapshot (one home's ``2**64``
made every home's snapshot fail)."""

MAX_BACKFILL_MS: Final = 24 * 3600 * 1000
"""How late an honest message may arrive (a wristband syncing its buffer after the elder comes home)."""

Range = tuple[float, float]


def clock_skewed(ts_ms: int, received_ms: int, *, max_skew_ms: int, max_backfill_ms: int = MAX_BACKFILL_MS) -> bool:
    """True if the device clock cannot be trusted for this message.

    A timestamp ahead of the receive time by more than ``max_skew_ms`` is a wrong clock. One behind
    it is usually honest buffered data (devices store readings while the gateway is away), so only
    a lag beyond ``max_backfill_ms`` counts as a wrong clock.

    >>> clock_skewed(10 * 60_000, 0, max_skew_ms=300_000)
    True
    >>> clock_skewed(0, 3 * 3600_000, max_skew_ms=300_000)
    False
    """
    lag = received_ms - ts_ms
    return lag < -max_skew_ms or lag > max_backfill_ms


class Envelope(msgspec.Struct, kw_only=True):
    """Fields every device payload carries: a per-device ``seq`` and the device time ``ts`` (epoch ms)."""

    seq: int
    ts: int


class DeviceStatus(Envelope, kw_only=True):
    """Heartbeat/status of a battery device (same shape for every kind)."""

    battery: int | None = None
    """Battery level in %."""
    battery_v: float | None = None
    """Battery voltage in V, for devices that report it."""
    tamper: bool | None = None
    rssi: int | None = None
    """Radio signal strength in dBm."""
    fw: str | None = None


STATUS_RANGES: Final[dict[str, Range]] = {"battery": (0, 100), "battery_v": (0, 12), "rssi": (-150, 0)}


def decode_json(decoder: msgspec.json.Decoder[Any], payload: bytes, where: object) -> Any:
    """Decode with msgspec, mapping its errors to the contract's reasons (wrong types vs. not JSON at all).

    JSON on the wire is UTF-8 (RFC 8259): invalid bytes anywhere, even in a field we ignore, are ``bad_json``.
    """
    if not payload.isascii():
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(str(where), Reason.BAD_JSON, f"invalid UTF-8 at byte {exc.start}") from None
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise DecodeError(str(where), Reason.BAD_SCHEMA, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(str(where), Reason.BAD_JSON, str(exc)) from None
    except RecursionError:
        raise DecodeError(str(where), Reason.BAD_JSON, "JSON nested too deeply") from None


_NUMBERS: Final = frozenset({int, float})


def fields_of(obj: msgspec.Struct) -> dict[str, FieldValue]:
    """The payload's values without the envelope (``seq``, ``ts``) and without absent (None) fields."""
    return {k: v for k, v in msgspec.structs.asdict(obj).items() if v is not None and k != "seq" and k != "ts"}


class Codec:
    """Decoder for one device kind: a schema per message type plus value ranges.

    Types are checked by msgspec (unknown extra fields are ignored, never fatal); ranges are
    checked here so an out-of-range value gets its own reason instead of a generic schema error.
    """

    def __init__(
        self,
        *,
        kind: DeviceKind,
        schemas: Mapping[MessageType, Any],
        ranges: Mapping[str, Range],
    ) -> None:
        self.kind = kind
        self.decoders = {t: msgspec.json.Decoder(schema) for t, schema in schemas.items()}
        self.ranges = dict(ranges)

    def decode(
        self,
        topic: Topic,
        payload: bytes,
        *,
        received_ms: int,
        max_skew_ms: int,
        max_backfill_ms: int = MAX_BACKFILL_MS,
    ) -> Reading:
        """Decode one payload that arrived on ``topic``; raise :class:`DecodeError` if it is invalid."""
        decoder = self.decoders.get(topic.type)
        if decoder is None:
            raise DecodeError(str(topic), Reason.UNSUPPORTED_TYPE, f"{self.kind.value} sends no {topic.type.value}")
        obj = decode_json(decoder, payload, topic)  # the topic string is built only for an error
        if not 0 <= obj.seq <= MAX_SEQ:
            raise DecodeError(str(topic), Reason.OUT_OF_RANGE, f"seq {obj.seq} outside 0..2^53")
        if not 0 <= obj.ts <= MAX_TS_MS:
            raise DecodeError(str(topic), Reason.OUT_OF_RANGE, f"ts {obj.ts} outside 0..2^53")
        fields = fields_of(obj)
        room = fields.get("room")
        if room is not None and room not in ROOM_NAMES:  # one name per room, however it is written (gateway.rooms)
            canonical = room_or_none(room)
            if canonical is None:
                del fields["room"]
            else:
                fields["room"] = canonical
        ranges = self.ranges
        for name, value in fields.items():
            bounds = ranges.get(name)
            if bounds is not None and type(value) in _NUMBERS:  # msgspec decodes exact ints and floats; bool is not
                low, high = bounds
                if not low <= value <= high:  # type: ignore[operator]  # an int or a float: checked above
                    raise DecodeError(str(topic), Reason.OUT_OF_RANGE, f"{name}={value} outside {low}..{high}")
        event = type(obj).__struct_config__.tag
        return Reading(
            site=topic.site,
            kind=self.kind,
            device=topic.device,
            type=topic.type,
            seq=obj.seq,
            ts_ms=obj.ts,
            received_ms=received_ms,
            fields=fields,
            event=event if isinstance(event, str) else None,
            clock_skewed=clock_skewed(obj.ts, received_ms, max_skew_ms=max_skew_ms, max_backfill_ms=max_backfill_ms),
        )
