"""4G watch frames → contract v1 ``wristband`` readings (pure: no network, no storage).

What each command becomes (field meanings from Traccar's ``WatchProtocolDecoder``, see docs/devices.md):

- ``LK`` (link / heartbeat): ``LK`` alone is a status reading (liveness); ``LK,steps,rolling,battery`` a telemetry
  reading with ``steps`` and ``battery``.
- ``UD``, ``UD2``, ``UD_LTE``, ``UD_WCDMA``, ``WT``, ``AL``, ``AL_LTE``... (position report, alarm report): a
  telemetry reading with ``battery``, ``steps`` and ``battery_low`` at the watch's own time; the status word's
  alarm bits become events: bit 16 ``sos``, bit 21 or 22 ``fall`` (confidence 1.0: the watch decided), bit 20
  ``removed``. An ``AL`` with none of these bits (geofence, power cut...) is stored as telemetry and also
  dead-lettered as ``unsupported_type``, so an operator sees alarm kinds a firmware sends that are not decoded. An
  alarm event carries the position (``lat``, ``lon``, ``gps_valid``) so a responder knows where; a routine
  position is not stored (location tracking of an elder is personal data the backend has no use for).
- ``PULSE``/``heart`` (heart rate), ``bphrt``/``BLOOD`` (blood pressure and heart rate), ``btemp2`` (body
  temperature): telemetry with ``hr`` (bpm), ``bp_sys``/``bp_dia`` (mmHg), ``body_temp`` (°C); a measured heart
  rate implies the watch is worn; ``heart,0`` (nothing measured) only keeps the watch alive (a status reading).
- ``oxygen,flag,spo2`` (blood oxygen, %; Traccar reads the second value as ``bloodOxygen``, its test frame
  ``[3G*9705141740*000B*oxygen,0,98]``): telemetry ``spo2`` and ``worn``; ``0`` (nothing measured) a status reading.
- ``INIT``, ``TKQ``, ``TKQ2``: answered, nothing stored. Anything else is refused as ``unsupported_type``.

The frame times (``ddmmyy,hhmmss``) are UTC, as Traccar reads them; a watch clock further off than the allowed skew
(a watch set to local time is 8 h ahead) is flagged and the received time used, as for contract v1 devices.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from gateway.codecs._base import clock_skewed
from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, FieldValue, MessageType, Reading
from gateway.watch.protocol import Frame

WATCH_PREFIX: Final = "watch"
"""Pseudo-topic prefix of watch frames in dead-letter entries and logs: ``watch/{site}/{device}``."""

POSITION_PREFIXES: Final = ("UD", "AL", "WT")
"""Position reports (``UD``, ``UD2``, ``UD3``, ``UD_LTE``, ``UD_WCDMA``, ``WT``) and alarms (``AL``, ``AL_LTE``,
``ALCUSTOMER1``...): Traccar decodes every command starting with these."""
VITALS_COMMANDS: Final = frozenset({"PULSE", "HEART", "BPHRT", "BLOOD", "BTEMP2", "OXYGEN"})
ANSWER_ONLY: Final = frozenset({"INIT", "TKQ", "TKQ2"})

BIT_LOW_BATTERY: Final = (0, 17)
BIT_SOS: Final = 16
BIT_REMOVED: Final = 20
BIT_FALL: Final = (21, 22)

_POSITION_FIELDS: Final = 16
"""ddmmyy, hhmmss, A|V, lat, N|S, lon, E|W, speed, course, altitude, satellites, rssi, battery, steps, tumbles,
status (cells and Wi-Fi follow)."""


def watch_topic(site: str | None, who: str) -> str:
    """The pseudo-topic naming a watch in dead-letter entries and logs: ``watch/{site}/{device}``.

    ``who`` is the registry device id of a registered watch, or the masked IMEI (:func:`mask_imei`) of one that is
    not (``site`` ``-``): the full IMEI identifies a person's watch and stays in the stored frame, out of the logs.

    >>> watch_topic("h0001", "watch1"), watch_topic(None, mask_imei("868000001234567"))
    ('watch/h0001/watch1', 'watch/-/***********4567')
    """
    return f"{WATCH_PREFIX}/{site or '-'}/{who}"


def mask_imei(imei: str) -> str:
    """An IMEI for logs and topics: the last four characters only.

    >>> mask_imei("868000001234567")
    '***********4567'
    """
    return "*" * max(0, len(imei) - 4) + imei[-4:]


def alarm_events(status: int) -> list[str]:
    """Contract events in a position report's status word, life-safety first.

    >>> alarm_events(0x00010000), alarm_events(0x00200010), alarm_events(0x00100000), alarm_events(0x11)
    (['sos'], ['fall'], ['removed'], [])
    """
    events: list[str] = []
    if status >> BIT_SOS & 1:
        events.append("sos")
    if any(status >> bit & 1 for bit in BIT_FALL):
        events.append("fall")
    if status >> BIT_REMOVED & 1:
        events.append("removed")
    return events


def _int(value: str, name: str, topic: str, lo: int, hi: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise DecodeError(topic, Reason.BAD_SCHEMA, f"{name} {value[:20]!r} is not an integer") from None
    if not lo <= number <= hi:
        raise DecodeError(topic, Reason.OUT_OF_RANGE, f"{name}={number} outside {lo}..{hi}")
    return number


def _float(value: str, name: str, topic: str, lo: float, hi: float) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise DecodeError(topic, Reason.BAD_SCHEMA, f"{name} {value[:20]!r} is not a number") from None
    if not lo <= number <= hi:  # also refuses nan
        raise DecodeError(topic, Reason.OUT_OF_RANGE, f"{name}={number} outside {lo}..{hi}")
    return number


def frame_time_ms(date: str, time: str) -> int | None:
    """Epoch ms of ``ddmmyy``, ``hhmmss`` (UTC), or None when the watch has no valid clock (``000000``).

    >>> frame_time_ms("271219", "094744")
    1577440064000
    >>> frame_time_ms("000000", "000000") is None
    True
    """
    try:
        when = dt.datetime.strptime(date.strip() + time.strip(), "%d%m%y%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(when.timestamp() * 1000)


class WatchDecoder:
    """Decodes frames of watches registered to homes; ``max_skew_ms`` as for contract v1 devices."""

    def __init__(self, *, max_skew_ms: int = 5 * 60 * 1000) -> None:
        self.max_skew_ms = max_skew_ms

    def decode(self, frame: Frame, *, site: str, device: str, received_ms: int) -> list[Reading | DecodeError]:
        """Readings (and notes for the dead-letter record) of one frame; raises :class:`DecodeError` if bad."""
        topic = watch_topic(site, device)
        command = frame.command.upper()
        if command == "LK":
            return [self._lk(frame, topic, site, device, received_ms)]
        if command.startswith(POSITION_PREFIXES):
            return self._position(frame, topic, site, device, received_ms, alarm=command.startswith("AL"))
        if command in VITALS_COMMANDS:
            return self._vitals(frame, command, topic, site, device, received_ms)
        if command in ANSWER_ONLY:
            return []
        raise DecodeError(topic, Reason.UNSUPPORTED_TYPE, f"watch command {frame.command[:16]!r} is not decoded")

    @staticmethod
    def _reading(
        site: str,
        device: str,
        mtype: MessageType,
        ts_ms: int,
        received_ms: int,
        fields: dict[str, FieldValue],
        *,
        event: str | None = None,
        skewed: bool = False,
    ) -> Reading:
        return Reading(
            site=site,
            kind=DeviceKind.WRISTBAND,
            device=device,
            type=mtype,
            seq=None,
            ts_ms=ts_ms,
            received_ms=received_ms,
            fields=fields,
            event=event,
            clock_skewed=skewed,
        )

    def _lk(self, frame: Frame, topic: str, site: str, device: str, now: int) -> Reading:
        args = frame.args
        if len(args) < 3:
            return self._reading(site, device, MessageType.STATUS, now, now, {})
        fields: dict[str, FieldValue] = {
            "steps": _int(args[0], "steps", topic, 0, 200_000),
            "battery": _int(args[2], "battery", topic, 0, 100),
        }
        return self._reading(site, device, MessageType.TELEMETRY, now, now, fields)

    def _position(
        self, frame: Frame, topic: str, site: str, device: str, now: int, *, alarm: bool
    ) -> list[Reading | DecodeError]:
        args = frame.args
        if len(args) < _POSITION_FIELDS:
            raise DecodeError(topic, Reason.BAD_SCHEMA, f"{len(args)} position fields < {_POSITION_FIELDS}")
        try:
            status = int(args[15].strip(), 16)
        except ValueError:
            raise DecodeError(topic, Reason.BAD_SCHEMA, f"status word {args[15][:12]!r} is not hex") from None
        ts = frame_time_ms(args[0], args[1])
        skewed = ts is None or clock_skewed(ts, now, max_skew_ms=self.max_skew_ms)
        ts_ms = now if ts is None else ts
        fields: dict[str, FieldValue] = {
            "battery": _int(args[12], "battery", topic, 0, 100),
            "steps": _int(args[13], "steps", topic, 0, 200_000),
            "battery_low": any(status >> bit & 1 for bit in BIT_LOW_BATTERY),
        }
        out: list[Reading | DecodeError] = []
        events = alarm_events(status)
        if alarm and not events:
            why = (
                f"{frame.command[:16]} alarm with status {status:08X}: no SOS, fall or removed bit; stored as telemetry"
            )
            out.append(DecodeError(topic, Reason.UNSUPPORTED_TYPE, why))
        if events:
            where: dict[str, FieldValue] = {"gps_valid": args[2].strip() == "A"}
            try:
                lat = _float(args[3], "latitude", topic, -90, 90)
                lon = _float(args[5], "longitude", topic, -180, 180)
            except DecodeError:
                pass  # an alarm without a usable position is still an alarm
            else:
                # Recorded frames carry signed values with either hemisphere letter ("-33.48,N", "-84.14,W"):
                # a letter S or W makes the value negative, the sign of the number is kept otherwise.
                where |= {
                    "lat": -abs(lat) if args[4].strip() == "S" else lat,
                    "lon": -abs(lon) if args[6].strip() == "W" else lon,
                }
            for event in events:
                extra: dict[str, FieldValue] = {"confidence": 1.0} if event == "fall" else {}
                extra |= where if event != "removed" else {}
                event_reading = self._reading(
                    site, device, MessageType.EVENT, ts_ms, now, extra, event=event, skewed=skewed
                )
                out.append(event_reading)
        out.append(self._reading(site, device, MessageType.TELEMETRY, ts_ms, now, fields, skewed=skewed))
        return out

    def _vitals(
        self, frame: Frame, command: str, topic: str, site: str, device: str, now: int
    ) -> list[Reading | DecodeError]:
        values = [v.strip() for v in frame.args]
        fields: dict[str, FieldValue] = {}
        if command == "BTEMP2":
            if len(values) >= 2 and values[0] and _int(values[0], "temperature flag", topic, 0, 9) > 0:
                fields["body_temp"] = _float(values[1], "body temperature", topic, 25, 45)
        elif command == "OXYGEN":
            if len(values) < 2 or not values[1]:
                raise DecodeError(topic, Reason.BAD_SCHEMA, "oxygen needs flag,spo2")
            spo2 = _int(values[1], "blood oxygen", topic, 0, 100)
            if spo2 > 0:  # 0: nothing measured
                fields["spo2"] = float(spo2)
                fields["worn"] = True
        else:
            i = 0
            if command in ("BPHRT", "BLOOD"):
                if len(values) < 2:
                    raise DecodeError(topic, Reason.BAD_SCHEMA, f"{frame.command} needs systolic,diastolic")
                fields["bp_sys"] = _int(values[0], "systolic", topic, 40, 300)
                fields["bp_dia"] = _int(values[1], "diastolic", topic, 20, 200)
                i = 2
            if i < len(values) and values[i]:
                hr = _float(values[i], "heart rate", topic, 0, 300)
                if hr > 0:  # 0: no measurement (watch off the wrist)
                    fields["hr"] = hr
                    fields["worn"] = True
        if not fields:  # "heart,0": nothing measured (off the wrist?); the watch is alive, nothing more is known
            return [self._reading(site, device, MessageType.STATUS, now, now, {})]
        return [self._reading(site, device, MessageType.TELEMETRY, now, now, fields)]
