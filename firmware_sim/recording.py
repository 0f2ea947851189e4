"""Recording files: JSONL of delivered messages, the ground truth, and the registry.

A recording line is ``{"t": received_ms, "topic": "...", "payload": "<the payload bytes as a UTF-8 string>"}``,
one per line, sorted by received time. ``payload`` is exactly what went over the wire (contract payloads are
UTF-8 JSON), so ``line["payload"].encode()`` gives back the original bytes.
"""

from __future__ import annotations

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


_DEC: Final = msgspec.json.Decoder(_Line)


def encode_line(received_ms: int, topic: str, payload: bytes) -> bytes:
    r"""One recording line (with the trailing newline).

    >>> encode_line(5, "ec/v1/h1/door/d1/event", b'{"event":"open","seq":1,"ts":4}')
    b'{"t":5,"topic":"ec/v1/h1/door/d1/event","payload":"{\\"event\\":\\"open\\",\\"seq\\":1,\\"ts\\":4}"}\n'
    """
    return b'{"t":%d,"topic":%s,"payload":%s}\n' % (received_ms, _ENC.encode(topic), _ENC.encode(payload.decode()))


def read_recording(path: Path) -> Iterator[Message]:
    """Iterate a recording file as (received ms, topic, payload bytes)."""
    with path.open("rb") as fh:
        for raw in fh:
            line = _DEC.decode(raw)
            yield line.t, line.topic, line.payload.encode()


def _escape(payload: bytes) -> bytes:
    # Contract payloads are compact JSON from msgspec: no control characters, and a backslash only inside
    # escaped strings. Without a backslash, escaping the quotes is the whole JSON string encoding.
    if b"\\" in payload:
        return _ENC.encode(payload.decode())[1:-1]
    return payload.replace(b'"', b'\\"')


def encode_lines(recv: list[int], topics: list[str], payloads: list[bytes]) -> bytes:
    """Many recording lines at once, identical to :func:`encode_line` for each (topics are plain ids)."""
    joined = b"\n".join(payloads)
    if b"\\" in joined or len(payloads) != joined.count(b"\n") + 1:
        escaped = [_escape(p) for p in payloads]
    else:
        # One C-level pass over the whole day instead of one call per message.
        escaped = joined.replace(b'"', b'\\"').split(b"\n") if payloads else []
    return b"".join(
        [
            b'{"t":%d,"topic":"%s","payload":"%s"}\n' % (r, t.encode(), p)
            for r, t, p in zip(recv, topics, escaped, strict=True)
        ]
    )


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
            fh.write(encode_lines(recv, topics, payloads))
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
