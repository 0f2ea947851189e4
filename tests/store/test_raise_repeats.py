"""Repeats of one alert are merged while the raise before them is being stored (alerts/raising.py).

A gateway's account can press its own call button as fast as it publishes: each press is a life-safety alert the
backend raises, and each raise was a store write of its own (the upsert and an audit entry) in a task of its own,
run in arrival order. A flood of 1,000 presses therefore made every other home's alert wait for 1,000 writes
(20,000 presses end to end: a neighbour's SOS waited 27 s, tests/test_e2e_hostile_gateway.py). Now the repeats that
arrive while a raise of the same alert is being stored wait for it, merged into one raise that counts them all.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from store_helpers import DAYTIME, FakeClock, make_alert, make_service, registry_with_channels
from support.receivers import Webhook

from alerts.audit import AuditAction, Entity
from alerts.raising import Raiser
from alerts.store.repository import AlertStore
from detection.models import AlertType, Severity

FLOOD = 1000


def two_homes(webhook: Webhook) -> dict[str, Any]:
    """The example registry's home h0001 and a neighbour h0002 in the same grid."""
    doc = registry_with_channels(webhook)
    other = copy.deepcopy(doc["sites"][0])
    other.update(site="h0002", gateway="gw-h0002")
    other["residents"][0].update(id="R0002", id_number="110101194202020041", phone="13900000002")
    doc["sites"].append(other)
    return doc


def _recording_writes(store: AlertStore) -> list[tuple[str, int]]:
    """Wrap the store's raise: each write's site and how many raises it stood for, in commit order."""
    writes: list[tuple[str, int]] = []
    write = store.raise_alert

    def recorded(alert: Any, **kwargs: Any) -> Any:
        result = write(alert, **kwargs)
        writes.append((alert.site, kwargs.get("repeats", 1)))
        return result

    store.raise_alert = recorded  # type: ignore[method-assign]
    return writes


async def test_a_flood_of_presses_costs_a_few_writes_and_a_neighbours_press_is_stored_before_them(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    store.import_registry(two_homes(webhook), now_ms=clock())
    service = make_service(store, clock)
    raiser = Raiser(service)
    writes = _recording_writes(store)

    def press(site: str, i: int) -> None:
        raiser.raise_(make_alert(AlertType.CALL_BUTTON, site=site, device="btn1", time_ms=DAYTIME + i))

    press("h0001", 0)
    await asyncio.sleep(0)  # its raise has started (as the gateway's next batch finds it)
    for i in range(1, FLOOD):
        press("h0001", i)
    press("h0002", 5)
    await raiser.wait()

    assert [site for site, _ in writes].index("h0002") <= 2, f"the neighbour's press waited: {writes[:5]}"
    assert sum(n for site, n in writes if site == "h0001") == FLOOD, "a press was not counted"
    # The flooded alert: its first raise, then every repeat that arrived meanwhile in one write. The neighbour's
    # write is another alert's, in its own thread: before, between or after those two (a loaded full run stored it
    # first, on PostgreSQL).
    assert [w for w in writes if w[0] == "h0001"][:2] == [("h0001", 1), ("h0001", FLOOD - 1)], writes
    assert raiser.merged == FLOOD + 1 - len(writes)
    assert raiser.unstored == set()
    (flooded,) = store.list_alerts(site="h0001")
    (pressed,) = store.list_alerts(site="h0002")
    assert (flooded.count, flooded.raised_ms, flooded.last_seen_ms) == (FLOOD, DAYTIME, DAYTIME + FLOOD - 1)
    assert (pressed.count, pressed.raised_ms) == (1, DAYTIME + 5)
    repeated = [
        e.detail
        for e in store.audit_entries(entity=Entity.ALERT, entity_id=str(flooded.id))
        if e.action == AuditAction.ALERT_REPEATED.value
    ]
    assert repeated == [{"count": FLOOD, "repeats": FLOOD - 1}]
    # Both homes' people were told once each (the repeats within the service's repeat interval add no message).
    assert sorted(m["path"] for m in webhook.wait(4)) == ["/W01", "/W01", "/W02", "/W02"]


async def test_a_clear_is_never_merged_with_the_raises_around_it(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    """Offline, back online, offline again, raised back to back: two alerts, the first cleared (merging the second
    raise into the first would have left one open alert and lost the clear's order)."""
    store.import_registry(two_homes(webhook), now_ms=clock())
    raiser = Raiser(make_service(store, clock))

    def offline(t: int, *, clears: bool = False) -> Any:
        return make_alert(
            AlertType.DEVICE_OFFLINE, site="h0001", device="pir1", time_ms=t, clears=clears, severity=Severity.WARNING
        )

    for alert in (offline(DAYTIME), offline(DAYTIME + 1, clears=True), offline(DAYTIME + 2), offline(DAYTIME + 3)):
        raiser.raise_(alert)
    await raiser.wait()
    alerts = sorted(store.list_alerts(site="h0001"), key=lambda a: a.raised_ms)
    assert [(a.raised_ms, a.state, a.count) for a in alerts] == [(DAYTIME, "cleared", 1), (DAYTIME + 2, "open", 2)]


async def test_presses_that_come_before_the_first_is_stored_open_the_alert_together(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    """Three presses fast-pathed in one batch: one insert counting three, its audit entry says so, one notice each."""
    store.import_registry(two_homes(webhook), now_ms=clock())
    raiser = Raiser(make_service(store, clock))
    writes = _recording_writes(store)
    for i in range(3):
        raiser.raise_(make_alert(AlertType.SOS, site="h0001", device="band1", time_ms=DAYTIME + i * 1000))
    await raiser.wait()
    assert writes == [("h0001", 3)]
    (alert,) = store.list_alerts(site="h0001")
    assert (alert.count, alert.raised_ms, alert.last_seen_ms) == (3, DAYTIME, DAYTIME + 2000)
    (raised,) = [e for e in store.audit_entries(entity_id=str(alert.id)) if e.action == AuditAction.ALERT_RAISED.value]
    assert raised.detail["repeats"] == 3
    assert sorted(m["path"] for m in webhook.wait(2)) == ["/W01", "/W02"]
