"""kill -9 of PostgreSQL, the alert store: an SOS pressed while it is down is raised and paged once it is back.

The SOS reading itself is durable (InfluxDB) and acknowledged to the gateway while the store is down: ingest does
not depend on it. Before, the alert's insert failed once, was logged ("could not raise"), and the SOS was lost: the
broker had its acknowledgement, and nothing else would raise it again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from chaos_helpers import new_home_backend, wait
from support.processes import kill_postmaster
from support.receivers import Webhook
from test_notify_durable import press_sos

from alerts.store.repository import AlertStore
from detection.models import AlertType
from eldercare.servers.influxd import Influxd
from eldercare.servers.postgres import Postgres
from eldercare.stack import Broker

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.postgres]


async def test_an_sos_pressed_while_postgresql_is_down_is_raised_and_paged_when_it_is_back(
    broker: Broker, influxd: Influxd, own_postgres: Postgres, webhook: Webhook, tmp_path: Path
) -> None:
    site, backend = new_home_backend(
        "hp", broker, influxd, tmp_path, channel_for=webhook.url, database_url=own_postgres.create_database("eldercare")
    )
    backend.start()
    try:
        kill_postmaster(own_postgres)
        await asyncio.to_thread(press_sos, broker, site)  # stored in InfluxDB and acknowledged: the store is not needed
        # The backend tried to store the alert and could not.
        await asyncio.to_thread(
            wait, lambda: f"could not raise sos for {site}" in backend.log_path.read_text(), 30, "the failed insert"
        )
        own_postgres.start()

        store = AlertStore(url=backend.database_url)
        try:
            await asyncio.to_thread(
                wait, lambda: len(store.list_alerts(site=site, alert_type=AlertType.SOS)) == 1, 60, "the SOS", backend
            )
            await asyncio.to_thread(webhook.wait, 2, 60)
            assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
            assert all("SOS" in m["title"] for m in webhook.messages)
        finally:
            store.close()
        assert backend.alive(), backend.log_tail()
    finally:
        backend.stop()


async def test_an_sos_not_yet_stored_survives_a_kill_of_the_backend_after_a_snapshot(
    broker: Broker, influxd: Influxd, own_postgres: Postgres, webhook: Webhook, tmp_path: Path
) -> None:
    """The detection snapshot is not written over a reading whose alert the store has not taken yet.

    A restart replays only what the snapshot has not seen: a snapshot taken after the SOS reading, with its alert
    still unstored, and then a kill -9, lost the SOS for good. PostgreSQL is down here so that the alert stays
    unstored across a snapshot period (the same happens in the milliseconds of an ordinary insert).
    """
    site, backend = new_home_backend(
        "hq",
        broker,
        influxd,
        tmp_path,
        channel_for=webhook.url,
        database_url=own_postgres.create_database("eldercare"),
        options={"snapshot_every_s": 0.5},
    )
    snapshot = tmp_path / "app" / "detect" / "engine.msgpack"
    backend.start()
    try:
        await asyncio.to_thread(wait, snapshot.exists, 30, "a first snapshot", backend)
        kill_postmaster(own_postgres)
        await asyncio.to_thread(press_sos, broker, site)
        await asyncio.to_thread(
            wait, lambda: f"could not raise sos for {site}" in backend.log_path.read_text(), 30, "the failed insert"
        )
        # A snapshot period has passed since: either a snapshot was written, or it was held back (and said so).
        written = snapshot.stat().st_mtime_ns
        await asyncio.to_thread(
            wait,
            lambda: snapshot.stat().st_mtime_ns != written or "snapshot held back" in backend.log_path.read_text(),
            30,
            "the next snapshot",
            backend,
        )
        backend.kill()
        own_postgres.start()
        backend.start()

        store = AlertStore(url=backend.database_url)
        try:
            await asyncio.to_thread(
                wait, lambda: len(store.list_alerts(site=site, alert_type=AlertType.SOS)) == 1, 60, "the SOS", backend
            )
            await asyncio.to_thread(webhook.wait, 2, 60)
            assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
        finally:
            store.close()
    finally:
        backend.stop()


async def test_an_sos_not_yet_stored_survives_a_kill_before_the_first_periodic_snapshot(
    broker: Broker, influxd: Influxd, own_postgres: Postgres, webhook: Webhook, tmp_path: Path
) -> None:
    """A backend killed before it wrote its first snapshot: a restart without one replayed nothing, so an SOS
    acknowledged and not yet stored (here: PostgreSQL down) was lost.

    The first fix wrote a snapshot right after the start's catch-up; a loaded run (two CPU burners beside the suite)
    still lost the SOS: the catch-up ended after the press, and that snapshot was held back over the unstored
    alert. The state is pinned here (the snapshot removed after the kill, whenever it was written); a start without
    a snapshot now replays the last 6 h of InfluxDB, as a partition worker does."""
    site, backend = new_home_backend(
        "hr", broker, influxd, tmp_path, channel_for=webhook.url, database_url=own_postgres.create_database("eldercare")
    )
    backend.start()
    try:
        kill_postmaster(own_postgres)
        await asyncio.to_thread(press_sos, broker, site)
        await asyncio.to_thread(
            wait, lambda: f"could not raise sos for {site}" in backend.log_path.read_text(), 30, "the failed insert"
        )
        backend.kill()
        (backend.data_dir / "detect" / "engine.msgpack").unlink(missing_ok=True)  # killed before its first one
        own_postgres.start()
        backend.start()

        store = AlertStore(url=backend.database_url)
        try:
            await asyncio.to_thread(
                wait, lambda: len(store.list_alerts(site=site, alert_type=AlertType.SOS)) == 1, 60, "the SOS", backend
            )
            await asyncio.to_thread(webhook.wait, 2, 60)
            assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
        finally:
            store.close()
    finally:
        backend.stop()
