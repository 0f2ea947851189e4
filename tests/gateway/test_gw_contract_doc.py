"""docs/contract.md cannot drift: every JSON example decodes, every message has one, the ranges table is right."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec

from gateway.codecs import call_button, door, gas, mattress, motion, smoke, wristband
from gateway.contract import decode_message, parse_topic
from gateway.models import DeviceKind, MessageType, Reading

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
CODECS = [mattress.CODEC, wristband.CODEC, door.CODEC, smoke.CODEC, gas.CODEC, call_button.CODEC, motion.CODEC]
# A topic in backticks at the end of a line, directly followed by a ```json block.
EXAMPLE = re.compile(r"`(ec/v1/[^`]+)`\n```json\n(.*?)\n```", re.S)
RANGE_ROW = re.compile(r"^\| (\w[\w ]*?) +\| `(\w+)` +\| [^|]+\| (-?[\d.]+) to (-?[\d.]+) +\|$", re.M)


def examples() -> list[tuple[str, bytes]]:
    return [(topic, body.encode()) for topic, body in EXAMPLE.findall(DOC.read_text())]


def decoded() -> list[Reading]:
    out = []
    for topic, payload in examples():
        ts = msgspec.json.decode(payload).get("ts", 1_767_225_600_000)
        out.append(decode_message(topic, payload, received_ms=ts))
    return out


def test_every_json_block_is_a_decodable_example() -> None:
    blocks = DOC.read_text().count("```json")
    assert blocks == len(examples()) >= 30  # no json block without its topic line
    for reading in decoded():
        assert not reading.clock_skewed


def test_every_message_of_every_kind_has_an_example() -> None:
    expected: set[tuple[DeviceKind, MessageType, str | None]] = set()
    for codec in CODECS:
        for mtype, decoder in codec.decoders.items():
            for struct in typing.get_args(decoder.type) or (decoder.type,):
                expected.add((codec.kind, mtype, struct.__struct_config__.tag))
    expected.add((DeviceKind.GATEWAY, MessageType.STATUS, None))
    assert {(r.kind, r.type, r.event) for r in decoded()} == expected


def test_examples_use_the_registry_devices_and_the_gateway_will() -> None:
    topics = {parse_topic(t) for t, _ in examples()}
    assert {t.site for t in topics} == {"h0001"}
    assert {t.device for t in topics} == {"mat1", "band1", "door1", "smoke1", "gas1", "btn1", "pir1", "gw-h0001"}
    assert ("ec/v1/h0001/gateway/gw-h0001/status", b'{"online": false}') in examples()


def test_ranges_table_matches_the_codecs() -> None:
    documented: dict[tuple[str, str], tuple[float, float]] = {}
    for kind, field, low, high in RANGE_ROW.findall(DOC.read_text()):
        documented[(kind, field)] = (float(low), float(high))
    for codec in CODECS:
        for field, (low, high) in codec.ranges.items():
            key = (codec.kind.value, field) if (codec.kind.value, field) in documented else ("every kind", field)
            assert documented[key] == (low, high), (codec.kind, field)
    assert len(documented) == 17
