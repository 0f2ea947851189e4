"""Recording files: JSONL of delivered messages, the ground truth, and the registry.

A recording line is ``{"t": received_ms, "topic": "...", "payload": "<the payload bytes as a UTF-8 string>"}``,
one per line, sorted by received time. ``payload`` is exactly what went over the wire (contract payloads are
UTF-8 JSON), so ``line["payload"].encode()`` gives back the original bytes.

A payload that is not valid UTF-8 (a malformed message of the device-faulty mix) cannot be a JSON string; its line
is ``{"t": ..., "topic": ..., "payload": "", "payload_b64": "<standard base64 of the bytes>"}``. Readers must
prefer ``payload_b64`` when present; one that ignores it sees an empty payload, which a decoder refuses as
``bad_json`` too, the same verdict as the original bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from firmware_sim.scenario import Message, Simulation

RECORDING_NAME: Final = "recording.jsonl"
GROUND_TRUTH_NAME: Final = "ground_truth.json"
REGISTRY_NAME: Final = "registry.json"

_ENC: Final = msgspec.json.Encoder()


class _Line(msgspec.Struct, frozen=True):
    t: int
    topic: str
    payload: str
    payload_b64: str | None = None


_DEC: Final = msgspec.json.Decoder(_Line)


def encode_line(received_ms: int, topic: str, payload: bytes) -> bytes:
    r"""One recording line (with the trailing newline).

    >>> encode_line(5, "ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":4}')
    b'{"t":5,"topic":"ec/v1/h1/door/d1/event","payload":"{\\"event\\":\\"open\\",\\"seq\\":1,\\"ts\\":4}"}\n'
    """
    return b'{"t":%d,"topic":%s,%s}\n' % (received_ms, _ENC.encode(topic), _payload_fields(payload))


def _payload_fields(payload: bytes) -> bytes:
    r"""``"payload":"..."`` for UTF-8, ``"payload":"","payload_b64":"..."`` otherwise.

    >>> _payload_fields(b"\xff{")
    b'"payload":"","payload_b64":"/3s="'
    """
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return b'"payload":"","payload_b64":"%s"' % base64.b64encode(payload)
    return b'"payload":' + _ENC.encode(text)


def read_recording(path: Path) -> Iterator[Message]:
    """Iterate a recording file as (received ms, topic, payload bytes)."""
    with path.open("rb") as fh:
        for raw in fh:
            line = _DEC.decode(raw)
            payload = line.payload.encode() if line.payload_b64 is None else base64.b64decode(line.payload_b64)
            yield line.t, line.topic, payload


_SPECIAL: Final = bytes(0 if 0x20 <= b < 0x7F and b != 0x5C or b == 0x0A else 1 for b in range(256))
"""Byte table marking (1) what the quote-escaping fast path cannot copy: control (except the newline separator),
non-ASCII and backslash."""


def encode_lines(recv: list[int], topics: list[str], payloads: list[bytes]) -> bytes:
    """Many recording lines at once, identical to :func:`encode_line` for each (topics are plain ids)."""
    return b"".join(_lines(recv, topics, payloads))


def _lines(recv: list[int], topics: list[str], payloads: list[bytes]) -> list[bytes]:
    if not payloads:
        return []
    joined = b"\n".join(payloads)
    escaped = joined.replace(b'"', b'\\"').split(b"\n")
    if len(escaped) != len(payloads):  # a payload with a newline: no fast path
        return [encode_line(r, t, p) for r, t, p in zip(recv, topics, payloads, strict=True)]
    # Printable ASCII without a backslash: escaping the quotes is the whole JSON string encoding, done in one
    # C-level pass over the whole day instead of one call per message.
    lines = [
        b'{"t":%d,"topic":"%s","payload":"%s"}\n' % (r, t.encode(), p)
        for r, t, p in zip(recv, topics, escaped, strict=True)
    ]
    marked = joined.translate(_SPECIAL)
    pos = marked.find(1)
    i = done = 0
    while pos >= 0:
        # The few payloads (malformed ones) that need real escaping or base64 are re-encoded one by one; the
        # payload index is the number of separators before the mark (counted from the previous one, in C).
        i += joined.count(b"\n", done, pos)
        lines[i] = encode_line(recv[i], topics[i], payloads[i])
        done = joined.find(b"\n", pos)
        if done < 0:
            break
        pos = marked.find(1, done)
    return lines


def write_messages(messages: Iterable[Message], path: Path) -> int:
    """Write messages as a recording file; return how many were written."""
    n = 0
    buf: list[bytes] = []
    with path.open("wb") as fh:
        for r, topic, payload in messages:
            buf.append(encode_line(r, topic, payload))
            n += 1
            if len(buf) >= 65536:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    return n


def write_batches(batches: Iterable[tuple[list[int], list[str], list[bytes]]], path: Path) -> int:
    """Write day batches (see :meth:`Simulation.batches`) as a recording file; return the message count."""
    n = 0
    with path.open("wb") as fh:
        for recv, topics, payloads in batches:
            fh.writelines(_lines(recv, topics, payloads))  # no day-sized join: fewer huge allocations
            n += len(recv)
    return n


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`write_simulation` produced."""

    recording: Path
    ground_truth: Path
    registry: Path
    messages: int
    incidents: int


def write_simulation(sim: Simulation, directory: Path, *, on_day: Callable[[int, int], None] | None = None) -> Written:
    """Write ``recording.jsonl``, ``ground_truth.json`` and ``registry.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    registry = directory / REGISTRY_NAME
    truth = directory / GROUND_TRUTH_NAME
    recording = directory / RECORDING_NAME
    registry.write_text(json.dumps(sim.registry, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    truth.write_text(json.dumps(sim.ground_truth_document(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    n = write_batches(sim.batches(on_day=on_day), recording)
    return Written(
        recording=recording, ground_truth=truth, registry=registry, messages=n, incidents=len(sim.ground_truth)
    )


def load_ground_truth(path: Path) -> dict[str, object]:
    """Read a ground-truth file."""
    doc: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return doc
