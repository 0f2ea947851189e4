"""4G watch protocol: framing of recorded frames, hostile bytes, decoding to wristband readings, the IMEI registry."""

from __future__ import annotations

import contextlib
import doctest
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.watch_frames import FALL, RECORDED, REMOVED_INDEXED, SHORT_LENGTH_LK, SOS

from gateway.errors import DecodeError, Reason
from gateway.models import DeviceKind, MessageType, Reading
from gateway.provisioning import ProvisioningError
from gateway.watch.decode import WatchDecoder
from gateway.watch.protocol import Frame, FrameError, FrameParser, encode_frame, reply_for
from gateway.watch.registry import WatchBinding, watches_from_registry

NOW = 1_764_000_000_000  # 2025-11-24 16:00 UTC


def frames_of(items: list[Frame | FrameError]) -> list[Frame]:
    return [i for i in items if isinstance(i, Frame)]


def decode(frame: bytes, *, now: int = NOW) -> list[Reading | DecodeError]:
    (parsed,) = FrameParser().feed(frame)
    assert isinstance(parsed, Frame), parsed
    return WatchDecoder().decode(parsed, site="h1", device="watch1", received_ms=now)


def readings(frame: bytes, *, now: int = NOW) -> list[Reading]:
    out = [r for r in decode(frame, now=now) if isinstance(r, Reading)]
    assert all(r.kind is DeviceKind.WRISTBAND and (r.site, r.device) == ("h1", "watch1") for r in out)
    return out


@pytest.mark.parametrize("name", ["gateway.watch.protocol", "gateway.watch.decode", "gateway.watch.registry"])
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


def test_every_recorded_frame_parses_in_one_stream_and_decodes() -> None:
    items = FrameParser().feed(b"".join(RECORDED))
    assert [i.wire for i in items if isinstance(i, Frame)] == list(RECORDED)
    decoder = WatchDecoder()
    for frame in frames_of(items):
        decoder.decode(frame, site="h1", device="watch1", received_ms=NOW)  # none raises


def test_a_frame_whose_length_field_is_wrong_is_still_read_and_so_is_the_next() -> None:
    items = FrameParser().feed(SHORT_LENGTH_LK + b"[3G*4700186508*000B*LK,0,10,100]")
    assert [(f.imei, f.command) for f in frames_of(items)] == [("9081000548", "LK"), ("4700186508", "LK")]
    assert len(items) == 2


def test_recorded_sos_alarm_is_an_sos_event_with_its_position_and_the_watch_gets_al() -> None:
    out = readings(SOS)
    (event,) = [r for r in out if r.type is MessageType.EVENT]
    assert event.event == "sos" and event.is_life_safety
    assert event.fields == {"gps_valid": False, "lat": 0.0, "lon": 0.0}
    (telemetry,) = [r for r in out if r.type is MessageType.TELEMETRY]
    assert telemetry.fields == {"battery": 81, "steps": 0, "battery_low": False}
    # The frame is from 2019: the watch's clock is not believed, the received time is used.
    assert event.clock_skewed and event.time_ms == NOW
    (frame,) = FrameParser().feed(SOS)
    assert isinstance(frame, Frame)
    assert reply_for(frame) == b"[3G*8809008845*0002*AL]"


def test_recorded_fall_alarm_is_a_fall_event_with_full_confidence() -> None:
    (event,) = [r for r in readings(FALL) if r.event is not None]
    assert (event.event, event.is_life_safety) == ("fall", True)
    assert event.fields == {"confidence": 1.0, "gps_valid": True, "lat": 47.08395, "lon": 15.482185}


def test_index_form_alarm_keeps_its_index_in_the_reply_and_bit_20_is_removed() -> None:
    (frame,) = FrameParser().feed(REMOVED_INDEXED)
    assert isinstance(frame, Frame) and frame.index == "0075"
    assert reply_for(frame) == b"[ZJ*014111001332708*0075*0002*AL]"
    assert [r.event for r in readings(REMOVED_INDEXED) if r.event] == ["removed"]


def test_an_alarm_without_a_known_bit_is_telemetry_plus_a_dead_letter_note() -> None:
    geofence = encode_frame("SG", "1", "AL,120117,145602,V,40.0,N,76.3,W,11.5,188,99,00,01,80,0,50,00000002,0,1")
    out = decode(geofence)
    notes = [r for r in out if isinstance(r, DecodeError)]
    assert [n.reason for n in notes] == [Reason.UNSUPPORTED_TYPE]
    assert [r.type for r in out if isinstance(r, Reading)] == [MessageType.TELEMETRY]


def test_link_frames() -> None:
    (bare,) = readings(b"[SG*8800000015*0002*LK]")
    assert (bare.type, bare.fields) == (MessageType.STATUS, {})
    (full,) = readings(b"[3G*4700186508*000E*LK,1234,10,15]")
    assert (full.type, full.fields) == (MessageType.TELEMETRY, {"steps": 1234, "battery": 15})
    assert full.time_ms == NOW
    with pytest.raises(DecodeError) as err:
        decode(b"[3G*4700186508*000B*LK,0,10,180]")
    assert err.value.reason is Reason.OUT_OF_RANGE


def test_vitals_frames() -> None:
    assert readings(b"[CS*8800000015*0008*PULSE,72]")[0].fields == {"hr": 72.0, "worn": True}
    bp = readings(b"[3G*4700609403*0013*bphrt,120,79,73,,,,]")[0]
    assert bp.fields == {"bp_sys": 120, "bp_dia": 79, "hr": 73.0, "worn": True}
    assert readings(b"[3G*2104326058*000E*btemp2,1,35.29]")[0].fields == {"body_temp": 35.29}
    nothing = readings(b"[3G*6005412902*0007*heart,0]")[0]
    assert (nothing.type, nothing.fields) == (MessageType.STATUS, {})


def test_unknown_commands_and_bad_fields_are_refused_with_a_reason() -> None:
    cases = {
        b"[3G*1*0006*CONFIG]": Reason.UNSUPPORTED_TYPE,
        b"[3G*1*0008*heart,xx]": Reason.BAD_SCHEMA,
        b"[3G*1*0009*heart,999]": Reason.OUT_OF_RANGE,
        b"[3G*1*000A*UD,1,2,3,4]": Reason.BAD_SCHEMA,
    }
    for frame, reason in cases.items():
        with pytest.raises(DecodeError) as err:
            decode(frame)
        assert err.value.reason is reason, frame


def test_a_watch_clock_on_local_time_is_flagged_and_the_received_time_used() -> None:
    # 2025-11-25 00:00:00 "UTC" on the watch = 8 h ahead of the received time.
    ahead = encode_frame("3G", "1", "AL,251125,000000,A,30.0,N,120.0,E,0,0,0,5,100,82,10,0,00010000,0,0")
    (event,) = [r for r in readings(ahead) if r.event]
    assert event.clock_skewed and event.ts_ms == NOW + 8 * 3600_000 and event.time_ms == NOW
    honest = encode_frame("3G", "1", "AL,241125,155959,A,30.0,N,120.0,E,0,0,0,5,100,82,10,0,00010000,0,0")
    (event,) = [r for r in readings(honest) if r.event]
    assert not event.clock_skewed and event.time_ms == NOW - 1000


def test_garbage_oversize_and_cut_frames_are_dropped_with_reasons_and_parsing_resumes() -> None:
    parser = FrameParser(max_frame=64)
    lk = b"[SG*8800000015*0002*LK]"
    items = parser.feed(b"GET / HTTP/1.1\r\n" + lk + b"[SG*1*0003*LK," + lk + b"[xx]" + lk)
    assert [type(i).__name__ for i in items] == ["FrameError", "Frame", "FrameError", "Frame", "FrameError", "Frame"]
    errors = [i for i in items if isinstance(i, FrameError)]
    assert [e.reason for e in errors] == [Reason.BAD_FRAME] * 3
    # No ']' within the limit: reported once, discarded without buffering, the next frame is read.
    items = parser.feed(b"[SG*8800000015*0400*" + b"x" * 100)
    assert [(i.reason, i.imei) for i in items if isinstance(i, FrameError)] == [(Reason.OVERSIZE, "8800000015")]
    assert parser.buffered == 0
    assert parser.feed(b"y" * 10_000) == [] and parser.buffered == 0
    assert frames_of(parser.feed(b"yy]" + lk))[0].wire == lk


def test_escaped_binary_content_is_unescaped_and_a_bad_escape_refused() -> None:
    (frame,) = FrameParser().feed(b"[CS*1234567890*000e*TK,#!AMR}\x01}\x02}\x03}\x04}\x05\xff]")
    assert isinstance(frame, Frame) and frame.content == b"TK,#!AMR}[],*\xff"
    (bad,) = FrameParser().feed(b"[CS*1234567890*0004*TK,}\x09]")
    assert isinstance(bad, FrameError) and bad.reason is Reason.BAD_FRAME


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(b"".join(RECORDED))), max_size=40))
def test_frames_split_across_reads_anywhere_come_out_the_same(cuts: list[int]) -> None:
    stream = b"".join(RECORDED)
    points = sorted(set(cuts))
    parser = FrameParser()
    items: list[Frame | FrameError] = []
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        items += parser.feed(stream[start:end])
    assert [i.wire for i in items if isinstance(i, Frame)] == list(RECORDED)
    assert len(items) == len(RECORDED) and parser.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=700), max_size=20))
def test_arbitrary_bytes_never_raise_and_never_grow_the_buffer(chunks: list[bytes]) -> None:
    parser = FrameParser(max_frame=512)
    decoder = WatchDecoder()
    for chunk in chunks:
        for item in parser.feed(chunk):
            if isinstance(item, Frame):
                with contextlib.suppress(DecodeError):
                    decoder.decode(item, site="h1", device="w1", received_ms=NOW)
        assert parser.buffered <= 512 + len(chunk)


def test_registry_binds_imeis_to_one_home_only() -> None:
    def doc(*sites: tuple[str, str, str]) -> dict[str, object]:
        imei = "8800000015"
        return {"sites": [{"site": s, "devices": [{"device": d, "kind": k, "imei": imei}]} for s, d, k in sites]}

    assert watches_from_registry(doc(("h1", "watch1", "wristband"))) == {
        "8800000015": WatchBinding(site="h1", device="watch1")
    }
    with pytest.raises(ProvisioningError, match="already registered to h1"):
        watches_from_registry(doc(("h1", "watch1", "wristband"), ("h2", "watch1", "wristband")))
    with pytest.raises(ProvisioningError, match="kind wristband"):
        watches_from_registry(doc(("h1", "door1", "door")))
