"""Room names as installers, gateways and datasets write them (gateway.rooms), through the real decoder."""

from __future__ import annotations

import json

import pytest

from gateway.contract import decode_message
from gateway.rooms import canonical_room

NOW = 1_767_258_000_000


@pytest.mark.parametrize(
    ("written", "room"),
    [
        ("bedroom", "bedroom"),
        ("Master Bedroom", "bedroom"),
        ("master_bedroom", "bedroom"),
        ("BEDROOM 2", "bedroom"),
        ("次卧", "bedroom"),
        ("Living Room", "living"),
        ("lounge", "living"),
        ("客厅", "living"),
        ("WC", "bathroom"),
        ("洗手间", "bathroom"),
        ("Front-Door", "entrance"),
        ("main door", "entrance"),
        ("玄关", "entrance"),
        ("Kitchen door", "kitchen"),
        ("bedroom door", "bedroom"),
        ("hallway", "hall"),
        ("Cups cupboard", "cups cupboard"),
        ("ＢＥＤＲＯＯＭ", "bedroom"),  # full-width letters from a Chinese keyboard
    ],
)
def test_each_written_room_has_one_name(written: str, room: str) -> None:
    assert canonical_room(written) == room


def test_no_word_of_a_longer_name_makes_a_front_door() -> None:
    """A contact on the bathroom door, or a "door sensor" of a cupboard, is not the front door: the engine would
    take every use of it for the elder leaving."""
    for written in ("Bathroom door", "Hall-Toilet door", "cupboard door", "door of the wardrobe", "卧室门"):
        assert canonical_room(written) != "entrance", written


@pytest.mark.parametrize(
    ("topic", "payload", "room"),
    [
        ("ec/v1/h1/motion/pir1/event", {"event": "motion", "seq": 1, "ts": NOW, "room": "Master Bedroom"}, "bedroom"),
        (
            "ec/v1/h1/motion/pir1/telemetry",
            {"count": 3, "window_s": 300, "seq": 2, "ts": NOW, "room": "卧室"},
            "bedroom",
        ),
        ("ec/v1/h1/door/d1/event", {"event": "open", "seq": 1, "ts": NOW, "room": "Front Door"}, "entrance"),
        ("ec/v1/h1/door/d1/event", {"event": "open", "seq": 2, "ts": NOW, "room": "  "}, None),
    ],
)
def test_the_decoder_hands_on_the_canonical_room(topic: str, payload: dict[str, object], room: str | None) -> None:
    reading = decode_message(topic, json.dumps(payload).encode(), received_ms=NOW)
    assert reading.fields.get("room") == room
