"""A 4G watch's frames raise the same alerts, at the same times, as the contract v1 wristband messages they match.

Two engines watch the same home: one is fed contract v1 payloads decoded by the real codec, the other the watch
frames of the same moments (written by the simulator's watch, decoded by gateway/watch).
"""

from __future__ import annotations

from detect_helpers import MIN, Home, at

from detection.models import Alert, AlertType
from firmware_sim.watch import FALL_BIT, SOS_BIT, frame, position_content
from firmware_sim.wire import encode_device_status, encode_fall, encode_wristband_event, encode_wristband_telemetry
from gateway.contract import decode_message
from gateway.models import Reading
from gateway.watch.decode import WatchDecoder
from gateway.watch.protocol import Frame, FrameParser

IMEI = "868000001111111"


def watch_readings(content: str, t: int) -> list[Reading]:
    (parsed,) = FrameParser().feed(frame("3G", IMEI, content))
    assert isinstance(parsed, Frame)
    out = WatchDecoder().decode(parsed, site="h1", device="band1", received_ms=t)
    return [r for r in out if isinstance(r, Reading)]


def v1(message: tuple[str, bytes, bool], t: int) -> Reading:
    return decode_message(message[0], message[1], received_ms=t)


def summary(alerts: list[Alert]) -> list[tuple[AlertType, str | None, int, bool]]:
    return [(a.type, a.device, a.time_ms, a.clears) for a in alerts]


def test_watch_frames_raise_what_contract_v1_wristband_messages_raise() -> None:
    band, watch = Home(), Home()
    t0 = at(0, 9, 0)
    pos = {"lat": 30.27, "lon": 120.15, "steps": 100}
    steps: list[tuple[int, list[Reading], list[Reading]]] = [
        (  # heartbeat with battery and steps
            t0,
            [
                v1(
                    encode_wristband_telemetry(
                        site="h1", device="band1", seq=1, ts=t0, worn=True, steps=100, battery=80
                    ),
                    t0,
                )
            ],
            watch_readings("LK,100,0,80", t0),
        ),
        (  # SOS key
            t0 + 5 * MIN,
            [v1(encode_wristband_event(site="h1", device="band1", seq=2, ts=t0 + 5 * MIN, event="sos"), t0 + 5 * MIN)],
            watch_readings(position_content("AL", ts_ms=t0 + 5 * MIN, battery=80, status=SOS_BIT, **pos), t0 + 5 * MIN),
        ),
        (  # a fall
            t0 + 30 * MIN,
            [v1(encode_fall(site="h1", device="band1", seq=3, ts=t0 + 30 * MIN, confidence=1.0), t0 + 30 * MIN)],
            watch_readings(
                position_content("AL", ts_ms=t0 + 30 * MIN, battery=80, status=FALL_BIT, **pos), t0 + 30 * MIN
            ),
        ),
        (  # the battery runs low
            t0 + 60 * MIN,
            [
                v1(
                    encode_device_status(
                        site="h1", kind="wristband", device="band1", seq=4, ts=t0 + 60 * MIN, battery=15
                    ),
                    t0 + 60 * MIN,
                )
            ],
            watch_readings("LK,100,0,15", t0 + 60 * MIN),
        ),
    ]
    for t, v1_readings, watch_frames in steps:
        band.send(*v1_readings)
        watch.send(*watch_frames)
        band.advance(t)
        watch.advance(t)
    assert {AlertType.SOS, AlertType.FALL, AlertType.LOW_BATTERY} <= {a.type for a in watch.alerts}
    # Then the watch falls silent: offline at the same moment as a silent contract v1 wristband.
    end = t0 + 3 * 24 * 60 * MIN
    band.advance(end)
    watch.advance(end)
    assert AlertType.DEVICE_OFFLINE in {a.type for a in watch.alerts}
    assert summary(watch.alerts) == summary(band.alerts)


# --- SpO2 (issue 16, step 5) ---------------------------------------------------------------------------------------

OXYGEN_RECORDED = b"[3G*9705141740*000B*oxygen,0,98]"
"""Traccar ``WatchProtocolDecoderTest.java`` (HEAD 9e5c458): decoded there as ``bloodOxygen`` 98."""


def test_the_recorded_oxygen_frame_is_a_worn_spo2_reading() -> None:
    (parsed,) = FrameParser().feed(OXYGEN_RECORDED)
    assert isinstance(parsed, Frame)
    (r,) = WatchDecoder().decode(parsed, site="h1", device="band1", received_ms=at(0, 9))
    assert isinstance(r, Reading) and r.fields == {"spo2": 98.0, "worn": True}
    (nothing,) = watch_readings("oxygen,0,0", at(0, 9))  # 0: nothing measured
    assert nothing.fields == {} and nothing.type.value == "status"


def test_low_spo2_from_a_watch_raises_critical_vitals_like_a_band_and_does_not_end_a_heart_rate_episode() -> None:
    watch = Home()
    t0 = at(0, 9)
    alerts: list[Alert] = []
    for k in range(0, 7):  # a heart rate of 150 every 10 s, an oxygen frame in between
        t = t0 + k * 10_000
        alerts += watch.send(*watch_readings("heart,150", t))
        alerts += watch.send(*watch_readings("oxygen,0,80", t + 5000))
    kinds = [(a.type, a.evidence.get("spo2") is not None) for a in alerts if a.type is AlertType.VITALS_CRITICAL]
    assert (AlertType.VITALS_CRITICAL, True) in kinds  # SpO2 80 % held a minute
    assert (AlertType.VITALS_CRITICAL, False) in kinds  # and the heart rate episode was not reset by the SpO2 frames
