"""``replay``: a recording in the simulator's JSONL format through the whole core, alerts out as JSONL."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from detect_helpers import DAY, MIN, at

from detection.detectors.base import BEHAVIOURAL
from detection.errors import RecordingError
from detection.replay import ReplayResult, replay, tally

REGISTRY = {
    "version": 1,
    "sites": [
        {
            "site": "h0001",
            "gateway": "gw-h0001",
            "devices": [
                {"device": "mat1", "kind": "mattress"},
                {"device": "band1", "kind": "wristband"},
                {"device": "pir1", "kind": "motion"},
            ],
            "residents": [{"id": "R1", "categories": ["独居"], "ability_level": 1}],
        }
    ],
}


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's messages unwrapped: rich wraps at 80 columns on a dumb terminal (CI), whatever COLUMNS says."""
    from rich.console import Console

    import eldercare.cli

    monkeypatch.setattr(eldercare.cli, "console", Console(stderr=True, width=400))
    monkeypatch.delenv("ELDERCARE_DETECT", raising=False)


def _line(t: int, topic: str, payload: dict[str, object]) -> str:
    return json.dumps({"t": t, "topic": f"ec/v1/h0001/{topic}", "payload": json.dumps(payload)})


def test_replay_writes_alerts_in_event_time(tmp_path: Path) -> None:
    lines = [
        _line(at(0, 22, 0), "mattress/mat1/event", {"event": "in_bed", "seq": 1, "ts": at(0, 22, 0)}),
        _line(at(1, 2, 0), "mattress/mat1/event", {"event": "out_of_bed", "seq": 2, "ts": at(1, 2, 0)}),
        _line(at(1, 2, 5), "wristband/band1/event", {"event": "sos", "seq": 1, "ts": at(1, 2, 5)}),
        _line(at(1, 2, 6), "wristband/band1/event", {"event": "bogus", "seq": 2, "ts": at(1, 2, 6)}),
        _line(at(1, 3, 0), "motion/pir1/telemetry", {"count": 0, "window_s": 600, "seq": 1, "ts": at(1, 3, 0)}),
    ]
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    out = tmp_path / "alerts.jsonl"
    result = replay(rec, reg, out)
    assert result.messages == 5 and result.readings == 4 and result.rejected == {"bad_schema": 1}
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    person = [(r["type"], r["time"]) for r in rows if r["type"] in ("sos", "night_bed_exit")]
    # The bed exit is due at 02:40; the elder is asked first and nobody answers within 5 min: paged at 02:45.
    assert person == [("sos", "2026-03-03T02:05:00+08:00"), ("night_bed_exit", "2026-03-03T02:45:00+08:00")]
    [exit_row] = [r for r in rows if r["type"] == "night_bed_exit"]
    assert "Check-in at 02:40: no answer within 5 min." in exit_row["explanation"]
    sos = next(r for r in rows if r["type"] == "sos")
    assert sos["home"] == "h0001" and sos["severity"] == "critical" and sos["notify"] and sos["explanation"]
    exit_row = next(r for r in rows if r["type"] == "night_bed_exit")
    assert exit_row["incident"] == sos["incident"] and exit_row["incident_severity"] == "critical"
    assert at(1, 2, 40) - at(1, 2, 0) == 40 * MIN
    # What reached people, per home: the SOS and the bed-exit page after its unanswered check-in; the clears and
    # merged updates the JSONL also holds are not counted.
    [home] = tally(result)
    assert (home.site, home.pages, home.prompts, home.answered, home.life_safety) == ("h0001", 1, 1, 0, 1)
    assert home.days == (at(1, 3, 0) - at(0, 22, 0)) / DAY and home.pages_per_month == 30 / home.days
    assert len(rows) > home.pages + home.life_safety


def test_replay_prints_what_reached_people_per_home(tmp_path: Path, wide: None) -> None:
    from typer.testing import CliRunner

    from eldercare.cli import app

    lines = [
        _line(at(0, 8, 0), "motion/pir1/event", {"event": "motion", "seq": 1, "ts": at(0, 8, 0)}),
        _line(at(0, 9, 0), "wristband/band1/event", {"event": "sos", "seq": 1, "ts": at(0, 9, 0)}),
        _line(at(0, 9, 1), "wristband/band1/event", {"event": "sos", "seq": 2, "ts": at(0, 9, 1)}),
        _line(at(2, 8, 0), "motion/pir1/event", {"event": "motion", "seq": 2, "ts": at(2, 8, 0)}),
    ]
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    res = CliRunner().invoke(app, ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    assert "what reached people, per home" in res.output and "每户实际通知" in res.output
    [row] = [x for x in res.output.splitlines() if x.strip().startswith("h0001")]  # (a warning may name it too)
    cells = re.split(r"\s{2,}", row.strip())
    # two days; the second SOS press within a minute is the same incident: one life-safety notification
    assert cells[:2] == ["h0001", "2.0"] and cells[5] == "1"
    assert len(cells) == 9 and cells[8] == "0"  # the last column: anything else that notified (apnoea)


def test_bad_recording_line_is_a_typed_error(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    rec.write_text('{"t": 1, "topic": "x"}\n', encoding="utf-8")
    with pytest.raises(RecordingError) as info:
        replay(rec, None, None, strict=True)
    assert info.value.line == 1
    # not strict: a file of which not one line is a recording line is the wrong file, not a damaged recording
    with pytest.raises(RecordingError, match="no line of the file is a recording line") as info:
        replay(rec, None, None)
    assert info.value.line == 1


def _damaged_recording(tmp_path: Path) -> Path:
    """A malformed line mid-file, a line without its topic, and a last line cut off by a recorder killed mid-write;
    an SOS after each of them."""
    rec = tmp_path / "rec.jsonl"
    sos = [
        _line(at(0, 9, i), "wristband/band1/event", {"event": "sos", "seq": i + 1, "ts": at(0, 9, i)}) for i in (0, 30)
    ]
    rec.write_text(
        "\n".join([
            _line(at(0, 8, 0), "motion/pir1/event", {"event": "motion", "seq": 1, "ts": at(0, 8, 0)}),
            "not json at all",
            sos[0],
            json.dumps({"t": at(0, 9, 10), "payload": "{}"}),
            sos[1],
            sos[1][:40],
        ]),
        encoding="utf-8",
    )  # fmt: skip
    return rec


def test_a_damaged_line_is_skipped_and_named_and_the_rest_is_replayed(tmp_path: Path) -> None:
    rec = _damaged_recording(tmp_path)
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    result = replay(rec, reg, None)
    assert result.messages == 3 and result.readings == 3
    assert result.unreadable.count == 3 and [n for n, _ in result.unreadable.first] == [2, 4, 6]
    assert "topic" in result.unreadable.first[1][1]
    sos = [a for a in result.alerts if a.type.value == "sos" and not a.clears]
    assert [a.time_ms for a in sos] == [at(0, 9, 0), at(0, 9, 30)]
    with pytest.raises(RecordingError) as info:
        replay(rec, reg, None, strict=True)
    assert info.value.line == 2


def test_replay_cli_names_the_skipped_lines_and_strict_stops(tmp_path: Path, wide: None) -> None:
    from typer.testing import CliRunner

    from eldercare.cli import app

    rec = _damaged_recording(tmp_path)
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    args = ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "a.jsonl")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 line(s)" in res.output and "line 2: " in res.output and "line 6: " in res.output
    assert "已跳过" in res.output
    assert [json.loads(x)["type"] for x in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()].count(
        "sos"
    ) >= 2
    res = CliRunner().invoke(app, [*args, "--strict"])
    assert res.exit_code == 1 and "rec.jsonl:2:" in res.output


def test_non_utf8_payloads_round_trip_from_the_simulators_recording(tmp_path: Path) -> None:
    from firmware_sim.recording import encode_line

    sos = json.dumps({"event": "sos", "seq": 1, "ts": at(1, 2, 5)}).encode()
    rec = tmp_path / "rec.jsonl"
    rec.write_bytes(
        encode_line(at(1, 2, 0), "ec/v1/h0001/wristband/band1/event", b'{"event":"f\xffall","seq":1,"ts":1}')
        + encode_line(at(1, 2, 5), "ec/v1/h0001/wristband/band1/event", sos)
        # the same SOS, carried as base64 the way non-UTF-8 bytes are: read back as bytes, not as ""
        + json.dumps({"t": at(1, 2, 6), "topic": "ec/v1/h0001/wristband/band1/event", "payload": "",
                      "payload_b64": base64.b64encode(sos.replace(b'"seq":1', b'"seq":2')).decode()}).encode()
        + b"\n"
    )  # fmt: skip
    assert b"payload_b64" in rec.read_bytes().splitlines()[0]
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    result = replay(rec, reg, None)
    assert result.messages == 3 and result.readings == 2 and result.rejected == {"bad_json": 1}
    assert [a.type.value for a in result.alerts].count("sos") >= 1


def test_bad_base64_payload_is_a_typed_error(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    rec.write_text('{"t": 1, "topic": "x", "payload": "", "payload_b64": "not base64!"}\n', encoding="utf-8")
    with pytest.raises(RecordingError) as info:
        replay(rec, None, None, strict=True)
    assert info.value.line == 1 and "base64" in str(info.value)


def _home_lines(site: str, day: int) -> list[str]:
    def line(t: int, topic: str, payload: dict[str, object]) -> str:
        return json.dumps({"t": t, "topic": f"ec/v1/{site}/{topic}", "payload": json.dumps(payload)})

    return [
        line(at(day, 20, 0), "motion/pir1/event", {"event": "motion", "seq": 1, "ts": at(day, 20, 0)}),
        line(at(day, 22, 0), "mattress/mat1/event", {"event": "in_bed", "seq": 1, "ts": at(day, 22, 0)}),
        line(at(day + 1, 2, 0), "mattress/mat1/event", {"event": "out_of_bed", "seq": 2, "ts": at(day + 1, 2, 0)}),
        line(at(day + 1, 2, 5), "wristband/band1/event", {"event": "sos", "seq": 1, "ts": at(day + 1, 2, 5)}),
        line(at(day + 1, 9, 0), "motion/pir1/event", {"event": "motion", "seq": 2, "ts": at(day + 1, 9, 0)}),
    ]


def test_homes_recorded_apart_and_concatenated_out_of_time_order_replay_as_if_alone(tmp_path: Path) -> None:
    """An evaluator puts two homes' recordings in one file, the later one first. Before, the engine's clock went back
    years in the middle of the file and the second home was also watched from the first line of the file: wrong
    alerts for both. Now the file is replayed in time order and each home from its own first message."""
    site2 = json.loads(json.dumps(REGISTRY["sites"][0]))  # type: ignore[index]
    site2.update(site="h0002", gateway="gw-h0002")
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"version": 1, "sites": [*REGISTRY["sites"], site2]}), encoding="utf-8")  # type: ignore[misc]
    early, late = _home_lines("h0001", 0), _home_lines("h0002", 9)

    def alerts(lines: list[str], name: str) -> tuple[list[tuple[str, str, int]], ReplayResult]:
        rec = tmp_path / name
        rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = replay(rec, reg, None)
        return sorted((a.site, a.type.value, a.time_ms) for a in result.alerts), result

    alone = sorted([*alerts(early, "a.jsonl")[0], *alerts(late, "b.jsonl")[0]])
    assert ("h0002", "sos", at(10, 2, 5)) in alone and ("h0001", "night_bed_exit", at(1, 2, 45)) in alone
    together, result = alerts([*late, *early], "both.jsonl")
    assert result.reordered is not None
    assert (result.reordered.line, result.reordered.before_ms, result.reordered.t_ms) == (6, at(10, 9, 0), at(0, 20, 0))
    # The only difference: the first home's recording ends while the second's goes on, so after its last message
    # its silence is judged as silence (devices offline, not up; with the gateway's status stream of a real
    # recording, one home-offline incident instead).
    extra = [x for x in together if x not in alone]
    assert {x[1] for x in extra} == {"device_offline", "not_up"}
    assert all(x[0] == "h0001" and x[2] > at(1, 9, 0) for x in extra)
    assert [x for x in alone if x not in together] == []
    in_order, result = alerts([*early, *late], "ordered.jsonl")
    assert in_order == together and result.reordered is None


def test_replay_cli_says_when_it_put_the_recording_in_time_order(tmp_path: Path, wide: None) -> None:
    from typer.testing import CliRunner

    from eldercare.cli import app

    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join([*_home_lines("h0001", 9), *_home_lines("h0001", 0)]) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    assert "is not in time order (line 6 goes back from 2026-03-12 01:00:00 UTC" in res.output
    assert "已按时间顺序重放" in res.output


def _contacts_home(rooms: bool) -> list[str]:
    """A home of door contacts, no registry: the front door and a kitchen cupboard; the cupboard opened at 23:30."""

    def door(t: int, dev: str, ev: str, seq: int, room: str) -> str:
        payload: dict[str, object] = {"event": ev, "seq": seq, "ts": t} | ({"room": room} if rooms else {})
        return json.dumps({"t": t, "topic": f"ec/v1/h0009/door/{dev}/event", "payload": json.dumps(payload)})

    lines = []
    for day in range(3):
        lines += [
            door(at(day, 9, 0), "front", "open", 4 * day + 1, "entrance"),
            door(at(day, 9, 0, 10), "front", "close", 4 * day + 2, "entrance"),
            door(at(day, 23, 30), "cupboard", "open", 4 * day + 1, "kitchen"),
            door(at(day, 23, 30, 20), "cupboard", "close", 4 * day + 2, "kitchen"),
        ]
    return lines


def test_without_a_registry_a_contact_that_names_its_room_is_not_taken_for_the_front_door(tmp_path: Path) -> None:
    """A replay without a registry took every door contact for the entrance door: a kitchen cupboard opened at
    night was "the elder left at night" (van Kasteren A replayed so: 24 night-door pages against 3 with its registry).
    A contact's events may now name its room, as a PIR's do; one that does not is still the entrance door, and the
    replay says which homes have several such contacts."""
    found = {}
    for rooms in (False, True):
        rec = tmp_path / f"rooms-{rooms}.jsonl"
        rec.write_text("\n".join(_contacts_home(rooms)) + "\n", encoding="utf-8")
        result = replay(rec, None, None)
        found[rooms] = (
            [a.time_ms for a in result.alerts if a.type.value == "night_door" and not a.clears],
            result.doors_without_room,
        )
    assert found[False] == ([at(0, 23, 50), at(1, 23, 50)], {"h0009": 2})  # the recording ends at 23:30 on day 2
    assert found[True] == ([], {})


def test_replay_cli_warns_of_contacts_without_a_room(tmp_path: Path, wide: None) -> None:
    from typer.testing import CliRunner

    from eldercare.cli import app

    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(_contacts_home(rooms=False)) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    assert "home h0009 has 2 door contacts without a room" in res.output and "个门磁未注明房间" in res.output
    rec.write_text("\n".join(_contacts_home(rooms=True)) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "b.jsonl")])
    assert res.exit_code == 0 and "without a room" not in res.output


def test_replay_cli_warns_of_a_recording_stamped_in_seconds(tmp_path: Path, wide: None) -> None:
    from typer.testing import CliRunner

    from eldercare.cli import app

    seconds = [json.loads(x) for x in _home_lines("h0001", 0)]
    for x in seconds:
        payload = json.loads(x["payload"])
        x["t"] //= 1000
        payload["ts"] //= 1000
        x["payload"] = json.dumps(payload)
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(json.dumps(x) for x in seconds) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    assert f'the recording\'s first "t" is {at(0, 20, 0) // 1000}' in res.output and "looks like seconds" in res.output
    rec.write_text("\n".join(_home_lines("h0001", 0)) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "b.jsonl")])
    assert res.exit_code == 0 and "looks like seconds" not in res.output


def test_a_payload_written_as_a_json_object_replays_like_the_same_payload_as_a_string(tmp_path: Path) -> None:
    """The format carries the exact wire payload as a JSON string; a hand-made recording often writes the object
    itself. Before, every such line was unreadable; now it is re-encoded and decoded like live traffic."""
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    as_string = _home_lines("h0001", 0)
    as_object = [json.dumps({**x, "payload": json.loads(x["payload"])}) for x in map(json.loads, as_string)]
    assert '"payload": {"event": "sos"' in as_object[3]
    out = {}
    for name, lines in (("string", as_string), ("object", as_object)):
        rec = tmp_path / f"{name}.jsonl"
        rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = replay(rec, reg, None)
        assert result.unreadable.count == 0 and result.readings == len(lines)
        out[name] = [(a.type.value, a.time_ms) for a in result.alerts]
    assert out["object"] == out["string"] and ("sos", at(1, 2, 5)) in out["object"]


def test_replay_cli_says_how_many_messages_the_contract_refused_and_why(tmp_path: Path, wide: None) -> None:
    """A recording whose payloads lack ``seq`` replayed to "0 alert updates" and said nothing else."""
    from typer.testing import CliRunner

    from eldercare.cli import app

    lines = [json.loads(x) for x in _home_lines("h0001", 0)]
    for x in lines[1:]:
        x["payload"] = json.dumps({k: v for k, v in json.loads(x["payload"]).items() if k != "seq"})
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    result = replay(rec, None, None)
    assert result.rejected == {"bad_schema": 4} and result.readings == 1
    assert result.rejected_example["bad_schema"].startswith("ec/v1/h0001/mattress/mat1/event: ")
    assert "seq" in result.rejected_example["bad_schema"]
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "warning: 4 of 5 messages (80%) were refused by the contract" in text
    assert "bad_schema 4 (first: ec/v1/h0001/mattress/mat1/event: Object missing required field `seq`)" in text


def test_homes_of_the_registry_without_a_message_are_named(tmp_path: Path, wide: None) -> None:
    """Each home is watched from its own first message, so a registered home absent from the recording raises
    nothing at all: the replay names it instead of leaving the reader to wonder."""
    from typer.testing import CliRunner

    from eldercare.cli import app

    site2 = {**REGISTRY["sites"][0], "site": "h0002", "gateway": "gw-h0002"}  # type: ignore[index]
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"version": 1, "sites": [*REGISTRY["sites"], site2]}), encoding="utf-8")  # type: ignore[misc]
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(_home_lines("h0001", 0)) + "\n", encoding="utf-8")
    result = replay(rec, reg, None)
    assert result.never_heard == ["h0002"] and not [a for a in result.alerts if a.site == "h0002"]
    res = CliRunner().invoke(app, ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    assert "1 home(s) of the registry have no message in the recording and were not replayed: h0002" in res.output


def test_the_tally_counts_pages_after_the_warm_up_apart(tmp_path: Path, wide: None) -> None:
    """An outside evaluation scores homes after their learning week; the table shows that rate beside the whole."""
    from typer.testing import CliRunner

    from eldercare.cli import app

    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(REGISTRY), encoding="utf-8")
    lines = [*_home_lines("h0001", 0), *_home_lines("h0001", 9)]  # a night bed exit page on day 1 and on day 10
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = replay(rec, reg, None)
    [home] = tally(result, warmup_days=7)
    pages = sorted(
        u.alert.time_ms for u in result.updates if u.notify and not u.alert.clears and u.alert.type in BEHAVIOURAL
    )
    assert pages[0] < at(0, 20, 0) + 7 * DAY <= pages[-1] and home.pages == len(pages) >= 2
    assert home.learned_pages == sum(t >= at(0, 20, 0) + 7 * DAY for t in pages) >= 1
    assert home.learned_days == home.days - 7 and home.learned_pages_per_month == home.learned_pages * 30 / (
        home.days - 7
    )
    [short] = tally(result, warmup_days=30)
    assert short.learned_pages == 0 and short.learned_pages_per_month is None
    res = CliRunner().invoke(app, ["replay", str(rec), "--registry", str(reg), "--out", str(tmp_path / "a.jsonl")])
    [row] = [x for x in res.output.splitlines() if x.strip().startswith("h0001")]  # (a warning may name it too)
    cells = re.split(r"\s{2,}", row.strip())
    assert cells[3] == f"{home.pages_per_month:.1f} ({home.learned_pages_per_month:.1f})"
    assert "per 30 days (after day 7)" in " ".join(res.output.split())


def _door_lines(*, heartbeats: bool) -> list[str]:
    """The front door and a cupboard (rooms in the events), used once a day for three days; with or without the
    6-hourly ``status`` heartbeat every contact sends (docs/contract.md)."""
    seq = {"front": 0, "cupboard": 0}

    def msg(t: int, dev: str, kind: str, payload: dict[str, object]) -> tuple[int, str]:
        seq[dev] += 1
        body = json.dumps({"seq": seq[dev], "ts": t, **payload})
        return t, json.dumps({"t": t, "topic": f"ec/v1/h0009/door/{dev}/{kind}", "payload": body})

    room = {"front": "entrance", "cupboard": "kitchen"}
    timed = []
    for day in range(3):
        for dev, (h, m) in (("front", (9, 0)), ("cupboard", (12, 30))):
            timed.append(msg(at(day, h, m), dev, "event", {"event": "open", "room": room[dev]}))
            timed.append(msg(at(day, h, m, 10), dev, "event", {"event": "close", "room": room[dev]}))
        if heartbeats:
            timed += [msg(at(day, h, 1), dev, "status", {"battery": 90}) for h in (0, 6, 12, 18) for dev in seq]
    if heartbeats:
        timed += [msg(at(3, h, 1), dev, "status", {"battery": 90}) for h in (0, 6) for dev in seq]
    timed.append(msg(at(3, 8, 0), "front", "event", {"event": "open", "room": "entrance"}))
    return [line for _, line in sorted(timed)]


def test_devices_without_heartbeats_are_named_with_the_offline_notifications_they_caused(
    tmp_path: Path, wide: None
) -> None:
    """A recording with events only (a home's own export, a research dataset) has no heartbeats, and a contact's
    liveness is read from them: each quiet spell of the person longer than 12 h 05 min calls it offline (Ordóñez B
    replayed so: 138 device notifications in 21 days). The replay says which devices never sent one and how many of
    the device notifications are theirs, instead of leaving them to read as failing hardware."""
    from typer.testing import CliRunner

    from eldercare.cli import app

    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(_door_lines(heartbeats=False)) + "\n", encoding="utf-8")
    bare = replay(rec, None, None)
    assert bare.no_heartbeat == {"h0009": ["cupboard", "front"]}
    offline = [a for a in bare.alerts if a.type.value == "device_offline" and not a.clears]
    assert offline and bare.quiet_offline() == {"h0009": len({(a.device, a.time_ms) for a in offline})}
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "a.jsonl")])
    assert res.exit_code == 0, res.output
    assert (
        "home h0009: 2 device(s) sent events but never a status heartbeat (cupboard, front)" in res.output
        and f"{bare.quiet_offline()['h0009']} of the device notifications above are for these devices" in res.output
        and "从无状态心跳" in res.output
    )
    # The same home with its heartbeats: nothing to say, and no device called offline.
    rec.write_text("\n".join(_door_lines(heartbeats=True)) + "\n", encoding="utf-8")
    beating = replay(rec, None, None)
    assert beating.no_heartbeat == {} and beating.quiet_offline() == {}
    assert not [a for a in beating.alerts if a.type.value == "device_offline"]
    res = CliRunner().invoke(app, ["replay", str(rec), "--out", str(tmp_path / "b.jsonl")])
    assert res.exit_code == 0 and "never a status heartbeat" not in res.output


def _worded_home(words: dict[str, str], *, in_events: bool) -> list[str]:
    """A home of two PIRs (bedroom, living room) and a front door whose rooms are written as ``words`` says: the
    elder stirs in the bedroom at 04:42 and does not get up until noon; the next night the front door opens at
    02:00 and nobody comes back."""

    def ev(t: int, kind: str, dev: str, event: str, seq: int) -> str:
        payload: dict[str, object] = {"event": event, "seq": seq, "ts": t}
        if in_events:
            payload["room"] = words[dev]
        return json.dumps({"t": t, "topic": f"ec/v1/h0001/{kind}/{dev}/event", "payload": json.dumps(payload)})

    return [
        ev(at(0, 20, 0), "motion", "pirliv", "motion", 1),
        ev(at(0, 22, 0), "motion", "pirbed", "motion", 1),
        ev(at(1, 4, 42), "motion", "pirbed", "motion", 2),
        ev(at(1, 12, 0), "motion", "pirliv", "motion", 2),
        ev(at(1, 23, 0), "motion", "pirbed", "motion", 3),
        ev(at(2, 2, 0), "door", "front", "open", 1),
        ev(at(2, 2, 0, 10), "door", "front", "close", 2),
        ev(at(2, 4, 0), "motion", "pirliv", "motion", 3),
    ]


@pytest.mark.parametrize(
    ("words", "in_events"),
    [
        ({"pirbed": "bedroom", "pirliv": "living", "front": "entrance"}, False),
        ({"pirbed": "Master Bedroom", "pirliv": "Living_Room", "front": "Front Door"}, False),
        ({"pirbed": "Bedroom1", "pirliv": "LivingRoom", "front": "FrontDoor"}, False),
        ({"pirbed": "主卧", "pirliv": "客厅", "front": "入户门"}, True),
        ({"pirbed": " BEDROOM ", "pirliv": "lounge", "front": "main-door"}, True),
    ],
)
def test_rooms_written_as_a_dataset_or_an_installer_writes_them_mean_the_same(
    tmp_path: Path, words: dict[str, str], in_events: bool
) -> None:
    """The detectors read two rooms: the bedroom (motion there is not "up") and the entrance (the front door). A
    home whose rooms were written "Master Bedroom" or "主卧" and "Front Door" or "入户门" lost both: the stir at 04:42
    counted as getting up, and the front door was a cupboard, so the night door was off."""
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(_worded_home(words, in_events=in_events)) + "\n", encoding="utf-8")
    reg = None
    if not in_events:
        reg = tmp_path / "registry.json"
        devices = [
            {"device": "pirbed", "kind": "motion", "room": words["pirbed"]},
            {"device": "pirliv", "kind": "motion", "room": words["pirliv"]},
            {"device": "front", "kind": "door", "room": words["front"]},
        ]
        reg.write_text(json.dumps(REGISTRY | {"sites": [REGISTRY["sites"][0] | {"devices": devices}]}))  # type: ignore[index]
    result = replay(rec, reg, None)
    raised = [(a.type.value, a.time_ms) for a in result.alerts if not a.clears]
    assert [t for k, t in raised if k == "not_up" and at(1, 4, 42) < t < at(1, 12, 0)], raised
    assert [t for k, t in raised if k == "night_door" and at(2, 2, 0) < t <= at(2, 2, 30)], raised
