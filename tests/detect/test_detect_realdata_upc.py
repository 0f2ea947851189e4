"""The UCI 799 home (``upc-1``): an older person living alone, five PIRs, no door contact, no labels."""

from __future__ import annotations

import calendar
import time
from pathlib import Path

import msgspec
import pytest

from detection.errors import RecordingError
from detection.realdata import evaluate as real_eval
from detection.realdata import sources
from detection.realdata.evaluate import evaluate_home, real_config, report_markdown
from detection.realdata.mapping import map_devices, messages, registry_of, site_info
from detection.realdata.sources import TlHomeInfo, cache_dir, load_home, missing_files
from gateway.contract import decode_message
from gateway.models import DeviceKind

HEADER = "datetime,Living room,Bedroom,Bathroom,Kitchen,Hallway\n"
H = 3600


def _utc(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def _row(stamp: str, column: int, value: str) -> str:
    cells = [""] * 5
    cells[column] = value
    return f"{stamp}.271086300+00:00," + ",".join(cells) + "\n"


def _home(root: Path, text: str) -> TlHomeInfo:
    d = root / sources.UPC_DIR
    d.mkdir(parents=True, exist_ok=True)
    (d / sources.UPC_FILE).write_text(text)
    return msgspec.structs.replace(sources.UPC_HOMES[0], site="upc-z")


def test_the_position_file_parses_into_on_spans_in_the_homes_wall_time(tmp_path: Path) -> None:
    text = (
        HEADER
        + _row("2019-11-01 02:52:55", 1, "0.0")  # an "off" with no "on" before it: nothing
        + _row("2019-11-01 07:00:00", 0, "1.0")
        + ",,,,,\n"  # a row with no value (29 in the release): skipped
        + _row("2019-11-01 07:01:00", 0, "1.0")  # repeated: changes nothing
        + _row("2019-11-01 07:02:30", 0, "0.0")
        + _row("2019-11-01 07:03:00", 4, "1.0")
        + _row("2019-11-01 07:04:00", 4, "0.0")
        + _row("2020-01-24 23:00:00", 3, "1.0")  # never switched off: lasts 0 s
        + _row("2020-01-25 00:00:00", 2, "1.0")  # the empty reference period: not read
        + _row("2020-01-25 00:01:00", 2, "0.0")
    )
    raw = load_home(_home(tmp_path, text), tmp_path, verify=False)
    assert raw.sensor_names == {1: "Living room", 2: "Bedroom", 3: "Bathroom", 4: "Kitchen", 5: "Hallway"}
    wall = _utc("2019-11-01 08:00:00")  # 07:00 UTC is 08:00 in Barcelona (CET), read as if UTC like every home
    spans = [(raw.sensor_names[f.ident], f.start_s - wall, f.duration_s) for f in raw.firings]
    assert spans == [
        ("Living room", 0, 150),
        ("Hallway", 180, 60),
        ("Kitchen", _utc("2020-01-24 23:00:00") + sources.UPC_UTC_OFFSET_S - wall, 0),
    ]
    assert raw.activities == () and not raw.info.absence_labels


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("time,Living room\n", "expected 'datetime,<room>,...'"),
        (HEADER + "2019-11-01 07:00:00+00:00,1.0,,\n", "expected 6 columns, got 4"),
        (HEADER + "2019-11-01 07:00:00+00:00,on,,,,\n", "Living room: expected 1.0 or 0.0, got 'on'"),
        (HEADER + "2019-11-01 07:00:00+01:00,1.0,,,,\n", "expected a UTC time"),
        (HEADER + "01/11/2019 07:00,1.0,,,,\n", "does not match format"),
    ],
)
def test_a_damaged_position_file_is_refused_with_its_line_and_reason(text: str, reason: str) -> None:
    with pytest.raises(RecordingError, match=reason):
        sources.parse_upc(text, "database_pos.csv")


def test_its_pirs_map_to_their_rooms_and_send_like_a_gateway(tmp_path: Path) -> None:
    text = HEADER + "".join(
        _row(f"2019-11-01 {7 + c:02d}:00:00", c, "1.0") + _row(f"2019-11-01 {7 + c:02d}:00:40", c, "0.0")
        for c in range(5)
    )
    raw = load_home(_home(tmp_path, text), tmp_path, verify=False)
    devices = map_devices(raw)
    assert [(d.names[0], d.kind, d.room) for d in devices] == [
        ("Living room", DeviceKind.MOTION, "living"),
        ("Bedroom", DeviceKind.MOTION, "bedroom"),
        ("Bathroom", DeviceKind.MOTION, "bathroom"),
        ("Kitchen", DeviceKind.MOTION, "kitchen"),
        ("Hallway", DeviceKind.MOTION, "hall"),
    ]
    prep = real_eval.prepare(raw)
    reg = registry_of([site_info("upc-z", prep.devices)])
    msgs = messages("upc-z", prep.devices, prep.intervals, prep.t0, prep.t0 + 6 * H * 1000)
    readings = [decode_message(topic, payload, received_ms=t, directory=reg) for t, topic, payload in msgs]
    moves = [(r.device, r.time_ms - prep.t0) for r in readings if r.event == "motion"]
    assert moves == [(f"pir{c + 1}", c * H * 1000) for c in range(5)]
    assert {r.device for r in readings if r.kind is DeviceKind.MOTION and not r.event} == {
        f"pir{c}" for c in range(1, 6)
    }  # each PIR heartbeats on its own cadence, motion or not


def _days(n: int, *, away_day: int | None = None) -> str:
    """Hallway, kitchen and living-room motion every 30 min 08:00–21:30 local, the bedroom at 22:00, for ``n`` days;
    on ``away_day`` nothing after 10:00 until the next morning (an outing nobody labelled)."""
    rows = []
    for day in range(n):
        base = _utc("2019-11-02 00:00:00") + day * 24 * H - sources.UPC_UTC_OFFSET_S  # local midnight, in UTC
        for k in range(28):
            t = base + 8 * H + k * 1800
            if day == away_day and k > 4:
                break
            for c in (4, 3, 0):
                s = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + c * 60))
                e = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + c * 60 + 30))
                rows += [_row(s, c, "1.0"), _row(e, c, "0.0")]
        s = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + 22 * H))
        rows += [_row(s, 1, "1.0"), _row(s[:-2] + "40", 1, "0.0")]
    return HEADER + "".join(rows)


def test_a_release_without_any_label_is_scored_whole_every_page_counting(tmp_path: Path) -> None:
    """No labels at all (as Home1): every page after the warm-up counts, an upper bound. Before, such a home with
    no annotation fell outside its "annotated span" everywhere: nothing was scored and no incident was placed."""
    raw = load_home(_home(tmp_path, _days(12, away_day=10)), tmp_path, verify=False)
    prep = real_eval.prepare(raw)
    assert prep.unscored == [] and prep.absences == [] and prep.avoid is None
    res = evaluate_home(raw, config=real_config())
    assert res.unseen and not res.labelled_absences
    assert 4 < res.scored_days < 5  # 12 days from the first event, less the 7-day warm-up
    assert res.false_pages >= 1 and res.false_by_type.get("inactivity", 0) >= 1  # the unlabelled outing pages
    assert {i.kind for i in res.incidents} == {"long_lie", "no_wake"}  # no bed sensor, no entrance door
    assert set(res.unsupported) >= {"out_not_back", "night_door", "night_bed_exit"}
    assert "| upc-z (unseen; no absence labels: upper bound) |" in report_markdown([res])


def test_its_checksum_is_byte_for_byte(tmp_path: Path) -> None:
    info = _home(tmp_path, HEADER)
    assert sources.UPC_FILE in missing_files(tmp_path)
    with pytest.raises(RecordingError, match="sha256"):
        load_home(info, tmp_path)
    assert info not in sources.available_homes(tmp_path)


_MISSING = sources.missing_by_dataset()[sources.UPC_DIR]


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_MISSING),
    reason=f"UCI 799 recording not in {cache_dir()}/{sources.UPC_DIR} (see docs/detection.md, 'Real homes');"
    f" missing or changed: {', '.join(_MISSING)}",
)
def test_the_uci_799_home_is_scored_whole_on_its_resident_period() -> None:
    (info,) = sources.UPC_HOMES
    raw = load_home(info)
    # The first "on" is 03:19:57 UTC = 04:19:57 in the home; the last span starts before 25-Jan 01:00 wall time
    # (00:00 UTC), where the empty reference period begins.
    assert raw.firings[0].start_s == _utc("2019-11-01 04:19:57")
    assert _utc("2020-01-24 23:00:00") < raw.firings[-1].start_s < _utc("2020-01-25 01:00:00")
    res = evaluate_home(raw, config=real_config())
    assert res.unseen and not res.labelled_absences and 75 < res.scored_days < 80
    assert {i.kind for i in res.incidents} == {"long_lie", "no_wake"}
    assert res.failures == 2  # the injected windows: the home records no failure of its own
    assert "| upc-1 (unseen; no absence labels: upper bound) |" in report_markdown([res])
