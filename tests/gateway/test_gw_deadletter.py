"""Dead-letter record: persistent, capped by rows and payload size, queryable, rendered for the CLI."""

from __future__ import annotations

from pathlib import Path

from gateway.deadletter import DeadLetter, DeadLetterCount, DeadLetterStore, format_entries, format_stats, site_of
from gateway.errors import Reason


def letter(i: int, *, reason: Reason = Reason.BAD_JSON, site: str = "h1", payload: bytes = b"{") -> DeadLetter:
    return DeadLetter(
        received_ms=1_700_000_000_000 + i,
        topic=f"ec/v1/{site}/door/d1/event",
        reason=reason,
        detail=f"detail {i}",
        payload=payload,
    )


def test_entries_survive_a_reopen(tmp_path: Path) -> None:
    with DeadLetterStore.in_data_dir(tmp_path) as store:
        store.add_many([letter(1), letter(2, reason=Reason.OUT_OF_RANGE)])
    with DeadLetterStore.in_data_dir(tmp_path) as store:
        entries = store.query()
    assert [(e.id, e.reason, e.detail) for e in entries] == [
        (2, Reason.OUT_OF_RANGE, "detail 2"),
        (1, Reason.BAD_JSON, "detail 1"),
    ]
    assert entries[0].site == "h1" and entries[0].topic == "ec/v1/h1/door/d1/event"


def test_row_cap_folds_the_oldest_into_counted_records(tmp_path: Path) -> None:
    with DeadLetterStore(path=tmp_path / "dl.db", max_rows=5, max_rows_per_site=5) as store:
        for start in range(0, 12, 3):
            store.add_many([letter(i) for i in range(start, start + 3)])
        assert store.count() == 5
        assert [e.detail for e in store.query()] == [f"detail {i}" for i in range(11, 6, -1)]
        assert store.counted() == [
            DeadLetterCount(
                site="h1", reason=Reason.BAD_JSON, count=7, first_ms=1_700_000_000_000, last_ms=1_700_000_000_006
            )
        ]


def test_each_home_keeps_its_budget_and_the_rest_is_counted_per_reason(tmp_path: Path) -> None:
    """A home over its budget loses its own oldest entries to the counted records, never another home's."""
    with DeadLetterStore(path=tmp_path / "dl.db", max_rows=10, max_rows_per_site=2) as store:
        store.add_many([letter(0, site="quiet")])
        store.add_many([letter(i, site="loud", reason=Reason.OUT_OF_RANGE) for i in range(1, 4)])
        store.add_many([letter(i, site="loud") for i in range(4, 30)])
        store.add_many([DeadLetter(received_ms=99, topic="junk", reason=Reason.BAD_TOPIC, detail="d", payload=b"")] * 3)
        assert [e.detail for e in store.query(site="quiet")] == ["detail 0"]
        assert [e.detail for e in store.query(site="loud")] == ["detail 29", "detail 28"]
        assert len(store.query(reason=Reason.BAD_TOPIC)) == 2
        counted = {(c.site, c.reason): c.count for c in store.counted()}
        assert counted == {("loud", Reason.BAD_JSON): 24, ("loud", Reason.OUT_OF_RANGE): 3, (None, Reason.BAD_TOPIC): 1}
        assert [c.count for c in store.counted(site="loud")] == [24, 3]
        assert store.count() == 5
        text = format_stats(store.count_by_reason(), store.counted())
    assert text.splitlines()[-4:] == [
        "only counted (beyond a home's budget or the record's size), by home:",
        "  loud  bad_json  24  (2023-11-14 22:13:20Z … 2023-11-14 22:13:20Z)",
        "  loud  out_of_range  3  (2023-11-14 22:13:20Z … 2023-11-14 22:13:20Z)",
        "  -  bad_topic  1  (1970-01-01 00:00:00Z … 1970-01-01 00:00:00Z)",
    ]
    # The whole record's cap counts rows (ids have gaps where a home was folded), also after a reopen.
    with DeadLetterStore(path=tmp_path / "dl.db", max_rows=6, max_rows_per_site=2) as store:
        store.add_many([letter(i, site=f"s{i}") for i in range(2)])
        assert store.count() == 6
        assert [e.site for e in store.query(site="quiet")] == []
        assert ("quiet", Reason.BAD_JSON, 1) in [(c.site, c.reason, c.count) for c in store.counted()]


def test_payload_is_capped_and_its_size_kept(tmp_path: Path) -> None:
    with DeadLetterStore(path=tmp_path / "dl.db", max_payload_bytes=10) as store:
        store.add_many([letter(1, payload=b"x" * 100, reason=Reason.OVERSIZE), letter(2, payload=b"\x00\xff")])
        big, small = sorted(store.query(), key=lambda e: e.id)
    assert big.payload == b"x" * 10 and big.size == 100 and big.truncated
    assert small.payload == b"\x00\xff" and small.size == 2 and not small.truncated


def test_query_filters_and_counts(tmp_path: Path) -> None:
    with DeadLetterStore.in_data_dir(tmp_path) as store:
        store.add_many(
            [
                letter(1, site="a"),
                letter(2, site="b", reason=Reason.UNKNOWN_DEVICE),
                letter(3, site="a", reason=Reason.UNKNOWN_DEVICE),
                letter(4, site="a"),
            ]
        )
        store.add_many(
            [DeadLetter(received_ms=5, topic="junk/topic", reason=Reason.BAD_TOPIC, detail="x", payload=b"")]
        )
        assert [e.detail for e in store.query(site="a")] == ["detail 4", "detail 3", "detail 1"]
        assert [e.detail for e in store.query(reason=Reason.UNKNOWN_DEVICE)] == ["detail 3", "detail 2"]
        assert [e.detail for e in store.query(site="a", reason=Reason.BAD_JSON, limit=1)] == ["detail 4"]
        assert [e.detail for e in store.query(since_ms=1_700_000_000_003)] == ["detail 4", "detail 3"]
        assert store.query(reason=Reason.BAD_TOPIC)[0].site is None
        assert store.count_by_reason() == {Reason.BAD_JSON: 2, Reason.UNKNOWN_DEVICE: 2, Reason.BAD_TOPIC: 1}
        assert store.add_many([]) is None


def test_cli_rendering_hides_payloads_unless_asked(tmp_path: Path) -> None:
    with DeadLetterStore.in_data_dir(tmp_path) as store:
        store.add_many([letter(1, payload=b'{"name":"\xe5\xbc\xa0"\n}')])
        entries = store.query()
        counts = store.count_by_reason()
    text = format_entries(entries)
    assert "bad_json" in text and "ec/v1/h1/door/d1/event" in text and "张" not in text
    shown = format_entries(entries, show_payload=True)
    assert 'payload: {"name":"张"\\n}' in shown
    assert format_stats(counts).splitlines() == ["bad_json  1", "total     1"]
    assert format_stats({}) == "dead-letter record is empty"


def test_site_of_tolerates_any_topic() -> None:
    assert site_of("ec/v1/h9/x") == "h9"
    assert site_of("ec/v1/") is None
    assert site_of("") is None


def test_a_zigbee2mqtt_refusal_is_filed_under_its_home(tmp_path: Path) -> None:
    """Found by tests/scale/test_scale_z2m.py: a Z2M home's dead letters had no site; per-home queries missed them."""
    assert site_of("z2m/h1/bridge/devices") == "h1"
    assert site_of("z2m/h1/kitchen/gas") == "h1"
    with DeadLetterStore.in_data_dir(tmp_path) as store:
        store.add_many(
            [DeadLetter(received_ms=1, topic="z2m/h1/hue", reason=Reason.UNKNOWN_MODEL, detail="d", payload=b"{}")]
        )
        assert [e.topic for e in store.query(site="h1")] == ["z2m/h1/hue"]
