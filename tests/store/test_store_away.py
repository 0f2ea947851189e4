"""Away notices (外出报备) in the alert store on SQLite and PostgreSQL: validation, lifecycle, audit."""

from __future__ import annotations

import threading

import pytest
from store_helpers import DAYTIME, load_registry_example

from alerts.audit import Entity
from alerts.store.away import AwayNotice, AwayNoticeError, AwayStore
from alerts.store.repository import AlertStore

H = 3_600_000
DAY = 24 * H
NOW = DAYTIME


@pytest.fixture
def away(store: AlertStore) -> AwayStore:
    store.import_registry(load_registry_example(), now_ms=1)
    return AwayStore(store)


def _register(away: AwayStore, **kw: object) -> AwayNotice:
    values: dict[str, object] = {
        "site": "h0001", "starts_ms": NOW, "ends_ms": NOW + 5 * DAY, "reason": "住女儿家", "by_id": "W01",
        "by_name": "王网格员", "now_ms": NOW,
    }  # fmt: skip
    values.update(kw)
    return away.register(**values)  # type: ignore[arg-type]


def test_away_register_is_stored_active_and_audited(store: AlertStore, away: AwayStore) -> None:
    notice = _register(away, reason="  住女儿家，电话 13912345678  ")
    assert notice.site == "h0001"
    assert (notice.starts_ms, notice.ends_ms, notice.created_ms) == (NOW, NOW + 5 * DAY, NOW)
    assert notice.reason == "住女儿家，电话 13912345678"
    assert (notice.created_by, notice.created_by_name) == ("W01", "王网格员")
    assert (notice.ended_ms, notice.ended_by, notice.ended_reason) == (None, None, "")
    assert away.active(NOW) == [notice]
    assert away.active(NOW - 1) == []  # not started yet
    assert away.active(NOW + 5 * DAY) == []  # planned return reached: over
    assert away.of_site("h0001") == [notice]
    [entry] = [e for e in store.audit_entries(entity=Entity.SITE) if e.action == "away.registered"]
    assert (entry.actor, entry.entity_id, entry.time_ms) == ("W01", "h0001", NOW)
    assert entry.detail["notice"] == notice.id
    assert entry.detail["ends_ms"] == NOW + 5 * DAY
    # free text never reaches the audit log with a phone number in clear
    assert "13912345678" not in str(entry.detail)
    assert "139****5678" in str(entry.detail["reason"])


def test_away_end_by_a_worker_and_by_the_system(store: AlertStore, away: AwayStore) -> None:
    first = _register(away)
    ended = away.end(first.id, by_id="W01", by_name="王网格员", reason="已回家", now_ms=NOW + DAY)
    assert ended is not None
    assert (ended.ended_ms, ended.ended_by, ended.ended_reason) == (NOW + DAY, "W01", "已回家")
    assert away.active(NOW + DAY) == []
    assert away.end(first.id, by_id="system", by_name="system", reason="again", now_ms=NOW + DAY + 1) is None
    assert away.end(999_999, by_id="W01", by_name="王网格员", reason="", now_ms=NOW) is None
    # the backend ends a notice early when the home shows the elder back
    second = _register(away, starts_ms=NOW + 2 * DAY, ends_ms=NOW + 4 * DAY, now_ms=NOW + DAY)
    assert away.active(NOW + 3 * DAY) == [second]
    by_system = away.end(second.id, by_id="system", by_name="system", reason="bed occupied", now_ms=NOW + 3 * DAY)
    assert by_system is not None and by_system.ended_by == "system"
    assert away.active(NOW + 3 * DAY) == []
    assert [n.id for n in away.of_site("h0001")] == [second.id, first.id]  # newest first
    ends = [e for e in store.audit_entries(entity=Entity.SITE) if e.action == "away.ended"]
    assert [(e.actor, e.channel, e.detail["notice"]) for e in ends] == [
        ("W01", "console", first.id), ("system", "system", second.id),
    ]  # fmt: skip


def test_away_notice_past_its_return_cannot_be_ended(away: AwayStore) -> None:
    notice = _register(away, ends_ms=NOW + DAY)
    assert away.end(notice.id, by_id="system", by_name="system", reason="late", now_ms=NOW + DAY) is None
    assert away.of_site("h0001")[0].ended_ms is None  # history kept as it was


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"ends_ms": NOW}, "ends_before_starts"),
        ({"starts_ms": NOW - 2 * DAY, "ends_ms": NOW - DAY}, "starts_past"),
        ({"starts_ms": NOW - 2 * DAY}, "starts_past"),
        ({"starts_ms": NOW - 20 * H, "ends_ms": NOW - H}, "ends_past"),
        ({"ends_ms": NOW + 91 * DAY}, "too_long"),
        ({"reason": "   "}, "reason"),
        ({"reason": "长" * 201}, "reason"),
        ({"site": "nowhere"}, "unknown_site"),
    ],
)
def test_away_register_refuses_invalid_notices(
    store: AlertStore, away: AwayStore, change: dict[str, object], code: str
) -> None:
    with pytest.raises(AwayNoticeError) as info:
        _register(away, **change)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)
    assert away.of_site(str(change.get("site", "h0001"))) == []
    assert not [e for e in store.audit_entries(entity=Entity.SITE) if e.action.startswith("away.")]


def test_away_starts_up_to_a_day_back_and_ends_up_to_90_days_ahead(away: AwayStore) -> None:
    notice = _register(away, starts_ms=NOW - DAY, ends_ms=NOW + 90 * DAY)
    assert away.active(NOW) == [notice]


def test_away_overlapping_notice_is_refused_a_later_one_is_not(away: AwayStore) -> None:
    first = _register(away)
    with pytest.raises(AwayNoticeError) as info:
        _register(away, starts_ms=NOW + DAY, ends_ms=NOW + 10 * DAY, by_id="W02")
    assert info.value.code == "overlap"
    assert info.value.other == first.id
    later = _register(away, starts_ms=NOW + 5 * DAY, ends_ms=NOW + 7 * DAY)  # from the planned return on
    assert [n.id for n in away.of_site("h0001")] == [later.id, first.id]
    # once ended, a new notice for the same time is accepted
    assert away.end(first.id, by_id="W01", by_name="王网格员", reason="", now_ms=NOW + 1) is not None
    again = _register(away, starts_ms=NOW + 1, ends_ms=NOW + 2 * DAY, now_ms=NOW + 1)
    assert away.active(NOW + DAY) == [again]


def test_away_concurrent_registrations_keep_one(away: AwayStore) -> None:
    results: list[object] = []
    barrier = threading.Barrier(4)

    def register(n: int) -> None:
        barrier.wait()
        try:
            results.append(_register(away, by_id=f"W0{n}"))
        except AwayNoticeError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r if isinstance(r, str) else "ok" for r in results) == ["ok", "overlap", "overlap", "overlap"]
    assert len(away.active(NOW)) == 1


def test_away_concurrent_ends_only_one_wins(away: AwayStore) -> None:
    notice = _register(away)
    results: list[AwayNotice | None] = []
    barrier = threading.Barrier(3)

    def end(by: str) -> None:
        barrier.wait()
        results.append(away.end(notice.id, by_id=by, by_name=by, reason="back", now_ms=NOW + H))

    threads = [threading.Thread(target=end, args=(by,)) for by in ("system", "W01", "W02")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and len(results) == 3
    assert away.of_site("h0001")[0].ended_by == winners[0].ended_by


def test_away_doctests() -> None:
    import doctest

    import alerts.privacy
    import alerts.store.away

    for module in (alerts.store.away, alerts.privacy):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0
