"""Dedup without races, lifecycle transitions, response clocks and clears, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from store_helpers import DAYTIME, load_registry_example, make_alert, store_raise

from alerts.escalation import PolicyBook
from alerts.lifecycle import Action, Channel, Outcome, State, outcomes_for
from alerts.store.errors import AlertNotFound, InvalidTransition
from alerts.store.records import RaiseResult
from alerts.store.repository import AlertStore
from detection.models import AlertType, Severity

BOOK = PolicyBook()


@pytest.fixture
def registered(store: AlertStore) -> AlertStore:
    store.import_registry(load_registry_example(), now_ms=1)
    return store


def test_store_repeats_increment_count_and_last_seen(registered: AlertStore) -> None:
    first = store_raise(registered, make_alert(time_ms=DAYTIME))
    assert first.created and first.record.count == 1 and first.record.state == "open"
    assert first.record.resident_id == "R0001" and first.record.community_id == "C01"
    second = store_raise(registered, make_alert(time_ms=DAYTIME + 5000))
    third = store_raise(registered, make_alert(time_ms=DAYTIME + 2000))  # late arrival does not move last_seen back
    assert not second.created and not third.created
    assert third.record.id == first.record.id
    assert third.record.count == 3
    assert third.record.last_seen_ms == DAYTIME + 5000
    assert third.record.raised_ms == DAYTIME
    assert len(registered.list_alerts()) == 1


def test_store_dedup_is_per_type_and_per_device_for_device_health(registered: AlertStore) -> None:
    store_raise(registered, make_alert(AlertType.SOS))
    store_raise(registered, make_alert(AlertType.FALL, device="band1"))
    off_mat = make_alert(AlertType.DEVICE_OFFLINE, device="mat1", severity=Severity.INFO)
    off_band = make_alert(AlertType.DEVICE_OFFLINE, device="band1", severity=Severity.INFO)
    store_raise(registered, off_mat)
    store_raise(registered, off_band)
    store_raise(registered, off_mat)
    alerts = registered.list_alerts()
    assert len(alerts) == 4
    assert sorted(a.count for a in alerts) == [1, 1, 1, 2]


def test_store_resolved_alert_frees_the_key_for_a_new_one(registered: AlertStore) -> None:
    first = store_raise(registered, make_alert())
    registered.transition(
        first.record.id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 60_000,
        outcome=Outcome.FALSE_ALARM,
    )  # fmt: skip
    again = store_raise(registered, make_alert(time_ms=DAYTIME + 120_000))
    assert again.created and again.record.id != first.record.id


@pytest.mark.slow
def test_store_concurrent_raises_make_one_row(db_url: str, registered: AlertStore) -> None:
    # Several engines (as several backend processes would have) and several threads each.
    stores = [registered] + [AlertStore(url=db_url, migrate=False) for _ in range(2)]
    barrier = threading.Barrier(12)

    def worker(i: int) -> RaiseResult:
        store = stores[i % len(stores)]
        barrier.wait()
        return store_raise(store, make_alert(time_ms=DAYTIME + i))

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(worker, range(12)))
    finally:
        for s in stores[1:]:
            s.close()
    assert sum(r.created for r in results) == 1
    assert len({r.record.id for r in results}) == 1
    rows = registered.list_alerts()
    assert len(rows) == 1 and rows[0].count == 12
    assert len(registered.events(rows[0].id)) == 1  # one "raise" event


def test_store_full_lifecycle_records_who_when_channel_and_clocks(registered: AlertStore) -> None:
    alert_id = store_raise(registered, make_alert()).record.id
    steps = [
        (Action.ACKNOWLEDGE, "W01", Channel.LINK, 45_000, None),
        (Action.EN_ROUTE, "W01", Channel.LINK, 60_000, None),
        (Action.ON_SITE, "W01", Channel.PHONE, 600_000, None),
        (Action.RESOLVE, "W01", Channel.CONSOLE, 1_200_000, Outcome.SENT_TO_HOSPITAL),
    ]
    for action, actor, channel, offset, outcome in steps:
        result = registered.transition(
            alert_id, action, actor=actor, channel=channel, now_ms=DAYTIME + offset, outcome=outcome,
            note=f"{action.value} note",
        )  # fmt: skip
        assert result.applied
    record = registered.get_alert(alert_id)
    assert record.state == "resolved" and record.outcome == "sent_to_hospital"
    assert (record.time_to_ack_ms, record.time_to_on_site_ms, record.time_to_resolve_ms) == (45_000, 600_000, 1_200_000)
    assert record.owner_id == "W01"
    assert record.next_due_ms is None
    assert record.note is not None and "resolve note" in record.note
    events = registered.events(alert_id)
    assert [(e.action, e.from_state, e.to_state, e.actor, e.channel) for e in events] == [
        ("raise", None, "open", "system", "device"),
        ("acknowledge", "open", "acknowledged", "W01", "link"),
        ("en_route", "acknowledged", "en_route", "W01", "link"),
        ("on_site", "en_route", "on_site", "W01", "phone"),
        ("resolve", "on_site", "resolved", "W01", "console"),
    ]
    assert [e.time_ms - DAYTIME for e in events] == [0, 45_000, 60_000, 600_000, 1_200_000]


def test_store_invalid_transitions_are_refused_with_reason(registered: AlertStore) -> None:
    alert_id = store_raise(registered, make_alert()).record.id
    with pytest.raises(InvalidTransition, match="outcome is required"):
        registered.transition(alert_id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 1)
    registered.transition(alert_id, Action.ON_SITE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 2)
    with pytest.raises(InvalidTransition) as info:
        registered.transition(alert_id, Action.ACKNOWLEDGE, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME + 3)
    assert (info.value.alert_id, info.value.state, info.value.action) == (alert_id, "on_site", "acknowledge")
    registered.transition(
        alert_id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 4, outcome=Outcome.OTHER
    )
    with pytest.raises(InvalidTransition, match="final"):
        registered.transition(alert_id, Action.NOTE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 5)
    with pytest.raises(AlertNotFound):
        registered.transition(99_999, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME)
    record = registered.get_alert(alert_id)
    assert record.ack_ms == DAYTIME + 2  # skipping ahead counts as taking the alert
    assert record.state == "resolved"


def test_store_clears_close_device_alerts_but_not_life_safety(registered: AlertStore) -> None:
    offline = make_alert(AlertType.DEVICE_OFFLINE, device="mat1", severity=Severity.WARNING)
    dev_id = store_raise(registered, offline).record.id
    smoke = make_alert(AlertType.SMOKE, device="smoke1")
    smoke_id = store_raise(registered, smoke).record.id
    cleared = registered.clear_alert(
        make_alert(AlertType.DEVICE_OFFLINE, device="mat1", clears=True), now_ms=DAYTIME + 9
    )
    assert cleared is not None and cleared.state == State.CLEARED.value and cleared.next_due_ms is None
    still = registered.clear_alert(make_alert(AlertType.SMOKE, device="smoke1", clears=True), now_ms=DAYTIME + 10)
    assert still is not None and still.id == smoke_id
    assert still.state == "open" and still.cleared_ms == DAYTIME + 10
    assert registered.clear_alert(make_alert(AlertType.LOW_BATTERY, device="btn1", clears=True), now_ms=1) is None
    assert registered.get_alert(dev_id).state == "cleared"
    registered.transition(
        smoke_id, Action.RESOLVE, actor="W02", channel=Channel.CONSOLE, now_ms=DAYTIME + 20, outcome=Outcome.FALSE_ALARM
    )
    assert registered.get_alert(smoke_id).state == "resolved"


def test_store_link_nonce_makes_transitions_idempotent(registered: AlertStore) -> None:
    alert_id = store_raise(registered, make_alert()).record.id
    first = registered.transition(
        alert_id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.LINK, now_ms=DAYTIME + 1, link_nonce="n-1"
    )
    again = registered.transition(
        alert_id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.LINK, now_ms=DAYTIME + 2, link_nonce="n-1"
    )
    other = registered.transition(
        alert_id, Action.ACKNOWLEDGE, actor="W02", channel=Channel.LINK, now_ms=DAYTIME + 3, link_nonce="n-2"
    )
    assert first.applied and not again.applied and not other.applied
    assert again.reason is not None and "already used" in again.reason
    assert other.reason == "already acknowledged by W01"
    assert len(registered.events(alert_id)) == 2


@pytest.mark.slow
def test_store_concurrent_acknowledgements_one_wins(registered: AlertStore) -> None:
    alert_id = store_raise(registered, make_alert()).record.id
    barrier = threading.Barrier(6)

    def ack(i: int) -> bool:
        barrier.wait()
        try:
            registered.transition(
                alert_id, Action.ACKNOWLEDGE, actor=f"W0{i}", channel=Channel.CONSOLE, now_ms=DAYTIME + i
            )
        except InvalidTransition:
            return False
        return True

    with ThreadPoolExecutor(max_workers=6) as pool:
        wins = list(pool.map(ack, range(6)))
    assert sum(wins) == 1
    assert [e.action for e in registered.events(alert_id)] == ["raise", "acknowledge"]


def test_an_alert_about_the_elder_ends_with_the_elders_state_a_devices_with_the_devices(
    registered: AlertStore,
) -> None:
    """The reviewer's resolve list had no "elder fine" and offered "device fixed" for a call button."""
    button = store_raise(registered, make_alert(AlertType.CALL_BUTTON, device="btn1")).record
    battery = store_raise(registered, make_alert(AlertType.LOW_BATTERY, device="mat1", severity=Severity.INFO)).record
    with pytest.raises(InvalidTransition, match="device_fixed is not an outcome of a call_button alert"):
        registered.transition(
            button.id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 1,
            outcome=Outcome.DEVICE_FIXED,
        )  # fmt: skip
    with pytest.raises(InvalidTransition, match="elder_fine is not an outcome of a low_battery alert"):
        registered.transition(
            battery.id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 1,
            outcome=Outcome.ELDER_FINE,
        )  # fmt: skip
    done = registered.transition(
        button.id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, now_ms=DAYTIME + 2, outcome=Outcome.ELDER_FINE
    )
    assert done.record.state == "resolved" and done.record.outcome == "elder_fine"
    assert outcomes_for("call_button")[0] is Outcome.ELDER_FINE and Outcome.DEVICE_FIXED not in outcomes_for("sos")
    assert outcomes_for("low_battery")[0] is Outcome.DEVICE_FIXED
