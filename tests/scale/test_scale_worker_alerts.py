"""An SOS a partition worker acknowledged is paged whatever single process dies: the worker, or PostgreSQL.

The embedded backend's kill -9 guarantees (tests/chaos/test_notify_durable.py, test_store_outage.py), checked on the
clustered mode: real ``python -m eldercare.partition_worker`` processes on a real 3-node nats-server cluster (8
partitions, so a worker joins in seconds), InfluxDB and PostgreSQL. The press is acknowledged to the device (PUBACK
after the R3 store) and by the worker to JetStream once InfluxDB holds it, so neither the device nor JetStream brings
it back: the worker itself, or the partition's next owner, must.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scale_helpers import Devices, Worker, worker_env
from support.backend import registry_for
from support.processes import kill_postmaster
from support.receivers import Webhook

from alerts.store.repository import AlertStore
from eldercare.servers.influxd import Influxd
from eldercare.servers.nats import NatsCluster
from eldercare.servers.postgres import Postgres
from firmware_sim.wire import encode_call_button_event, encode_mattress_telemetry
from ingest.nats_bus import NatsBus
from ingest.partitions import partition_of

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

LEASE_S = 5.0


def _wait(check: Callable[[], bool], timeout: float, what: str, *workers: Worker) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}\n{w.log.read_text()[-3000:]}" for w in workers)
            raise AssertionError(f"{what} (not within {timeout:g} s)\n{logs}")
        time.sleep(0.1)


class _Home:
    """One home on the cluster: its store (registry imported, channels on the webhook), devices and workers."""

    def __init__(
        self,
        cluster: NatsCluster,
        influxd: Influxd,
        db: str,
        database_url: str,
        webhook: Webhook,
        tmp_path: Path,
        policies: dict[str, Any] | None = None,
    ) -> None:
        self.site = f"hw{uuid.uuid4().hex[:8]}"
        self.partition = partition_of(self.site, cluster.partitions)
        self.cluster = cluster
        self.store = AlertStore(url=database_url)  # migrated here, before any worker starts
        self.store.import_registry(registry_for(self.site, webhook.url), now_ms=time.time_ns() // 1_000_000)
        self.store.close()
        self.database_url = database_url
        self.env = {
            **worker_env(cluster, influxd, db, lease_s=LEASE_S, database_url=database_url, snapshot_s=0.5),
            "ELDERCARE_PARTITIONS": str(cluster.partitions),
        }
        if policies is not None:  # as an operator gives them
            (tmp_path / "policies.json").write_text(json.dumps(policies), encoding="utf-8")
            self.env["ELDERCARE_POLICIES_PATH"] = str(tmp_path / "policies.json")
        self.tmp_path = tmp_path
        self.devices = Devices([n.mqtt_port for n in cluster.nodes])
        self.seq = 0

    def worker(self, name: str) -> Worker:
        """A worker process, started, once it consumes the home's partition."""
        worker = Worker(name, self.env, self.tmp_path)
        worker.start()
        worker.wait_ready()
        worker.wait_consuming(self.site, partitions=self.cluster.partitions, timeout=60)
        return worker

    def publish(self, *, press: bool) -> None:
        """A mattress reading, or a call-button press; returns once the cluster acknowledged it."""
        self.seq += 1
        now = time.time_ns() // 1_000_000
        message = (
            encode_call_button_event(site=self.site, device="btn1", seq=self.seq, ts=now, event="press")
            if press
            else encode_mattress_telemetry(site=self.site, device="mat1", seq=self.seq, ts=now, occupied=True)
        )
        self.devices.publish([(message.topic, message.payload)])

    def alerts(self) -> list[int]:
        store = AlertStore(url=self.database_url)
        try:
            return [a.id for a in store.list_alerts(site=self.site)]
        finally:
            store.close()

    def close(self) -> None:
        self.devices.close()


@pytest.fixture
def home_on(
    cluster8: NatsCluster, influxd: Influxd, unique_db: str, webhook: Webhook, tmp_path: Path
) -> Iterator[Callable[[str], _Home]]:
    """``home_on(database_url)``: a home on this test's 8-partition cluster, its alerts in that database.

    ``influx=`` puts its readings in that InfluxDB instead of the session's (one a test stops); ``policies=`` is
    the workers' escalation policies file (``ELDERCARE_POLICIES_PATH``).
    """
    made: list[_Home] = []

    def make(database_url: str, *, influx: Influxd | None = None, policies: dict[str, Any] | None = None) -> _Home:
        home = _Home(cluster8, influx or influxd, unique_db, database_url, webhook, tmp_path, policies)
        made.append(home)
        return home

    yield make
    for home in made:
        home.close()


async def _snapshot_revision(cluster: NatsCluster, partition: int) -> int | None:
    """The revision of the partition's snapshot pointer (it moves with every snapshot stored), None without one."""
    async with NatsBus(servers=cluster.urls, name="observer") as bus:
        pointer = await (await bus.snapshots(replicas=3))._pointer(partition)
    return None if pointer is None else pointer[2]


async def _press_and_kill_while_sending(
    home: _Home, webhook: Webhook, workers: list[Worker], *, held: tuple[str, ...], delivered: int = 0
) -> int:
    """Worker w1 raises an SOS and is SIGKILLed while its messages to ``held`` wait for their answer (after
    ``delivered`` others went out); then w2 starts. Both join ``workers``; returns the alert's id."""
    workers.append(w1 := await asyncio.to_thread(home.worker, "w1"))
    webhook.hold(*held)
    await asyncio.to_thread(home.publish, press=True)
    if delivered:
        await asyncio.to_thread(webhook.wait, delivered)
    waiting = await asyncio.to_thread(webhook.wait_held, len(held))
    assert sorted(m["path"] for m in waiting) == sorted(f"/{w}" for w in held)
    w1.kill()
    webhook.release()  # too late: nobody waits for these answers any more
    (alert_id,) = home.alerts()
    workers.append(await asyncio.to_thread(home.worker, "w2"))
    return alert_id


@pytest.mark.scale  # 31-38 s: two worker starts and a lease expiry
async def test_an_sos_page_in_flight_when_its_worker_is_killed_is_sent_by_the_partitions_next_owner(
    home_on: Callable[[str], _Home], postgres_server: Postgres, webhook: Webhook
) -> None:
    """The worker stored the alert and waits for the phones' answers when it is SIGKILLed.

    The alert is in the store, so the next owner's recovery does not raise it again, and nobody was told: before,
    nobody ever was (the workers ran no part of the notification outbox: no resume, no escalation timers).
    """
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    home = home_on(postgres_server.create_database(db_name))
    workers: list[Worker] = []
    try:
        alert_id = await _press_and_kill_while_sending(home, webhook, workers, held=("W01", "W02"))
        await asyncio.to_thread(
            _wait,
            lambda: {m["path"] for m in webhook.messages} >= {"/W01", "/W02"},
            60,
            "the SOS pages owed by the killed worker were never sent",
            *workers,
        )
        store = AlertStore(url=home.database_url)
        try:
            await asyncio.to_thread(
                _wait,
                lambda: (
                    {(n.worker_id, n.status) for n in store.notifications(alert_id=alert_id)}
                    == {("W01", "sent"), ("W02", "sent")}
                ),
                30,
                "the pages recorded as sent",
                *workers,
            )
        finally:
            store.close()
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
        assert home.alerts() == [alert_id], "one alert, not raised again by the next owner"
    finally:
        webhook.release()
        for w in workers:
            w.stop()
        postgres_server.drop_database(db_name)


STREET_AFTER_3_S = {
    "default": {
        "critical": {
            "remind_every_s": None,
            "escalate": [{"after_s": 3, "roles": ["street"]}],
            "on_site_within_s": None,
        }
    }
}
"""Critical alerts: the grid worker and the duty officer at once, the street (W03) after 3 s; no reminders."""


@pytest.mark.scale  # 35-45 s: two worker starts, a heartbeat expiry
async def test_an_escalation_in_flight_when_its_worker_is_killed_is_sent_by_a_live_worker_at_once(
    home_on: Callable[..., _Home], postgres_server: Postgres, webhook: Webhook
) -> None:
    """The street's escalation is being sent (its outbox row ``sending``, leased to its sender for 120 s) when the
    worker is SIGKILLed.

    Before, it went out only when that lease ran out: a worker's id changes with every start, so nobody came back
    for its rows (the embedded backend's restart puts its own back at once). Now every live worker puts back what
    workers whose heartbeat is gone were sending, and sends it at its next tick.
    """
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    home = home_on(postgres_server.create_database(db_name), policies=STREET_AFTER_3_S)
    workers: list[Worker] = []
    try:
        # The first messages (grid worker, duty officer) are delivered; the street's escalation is held.
        alert_id = await _press_and_kill_while_sending(home, webhook, workers, held=("W03",), delivered=2)
        await asyncio.to_thread(
            _wait,
            lambda: len(webhook.to("W03")) == 1,
            60,  # the old lease alone was 120 s from the send
            "the escalation the killed worker was sending was not sent again",
            *workers,
        )
        store = AlertStore(url=home.database_url)
        try:
            await asyncio.to_thread(
                _wait,
                lambda: ("W03", "escalation", "sent") in {(n.worker_id, n.kind, n.status)
                                                          for n in store.notifications(alert_id=alert_id)},
                30,
                "the escalation recorded as sent",
                *workers,
            )  # fmt: skip
        finally:
            store.close()
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02", "/W03"]
    finally:
        webhook.release()
        for w in workers:
            w.stop()
        postgres_server.drop_database(db_name)


@pytest.mark.scale  # ~30 s: two InfluxDB starts, a worker start
async def test_an_sos_in_a_partition_taken_over_while_influxdb_is_down_is_paged_before_influxdb_is_back(
    home_on: Callable[..., _Home], postgres_server: Postgres, own_influxd: Influxd, webhook: Webhook
) -> None:
    """A take-over restores the partition from InfluxDB's history; while InfluxDB is down that read is retried.

    Before, the partition was not consumed until the read succeeded: a press in it waited for InfluxDB (found
    2026-12-06, docs/scale-out.md) although a life-safety alert needs no history. Now the partition is consumed at
    once, its life-safety readings go through an engine of their own, and the restored engine takes over the
    readings kept meanwhile; its catch-up does not raise the press a second time. The same test found that a worker
    started while InfluxDB was down never created its database (one attempt at start): once InfluxDB was back, its
    restores failed with "database not found" for ever; the setup is retried in the background now.
    """
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    home = home_on(postgres_server.create_database(db_name), influx=own_influxd)
    own_influxd.stop()
    w1: Worker | None = None
    try:
        w1 = await asyncio.to_thread(home.worker, "w1")
        await asyncio.to_thread(w1.wait_line, f"partition {home.partition}: restoring failed", 60)
        await asyncio.to_thread(home.publish, press=False)  # kept for the restored engine
        await asyncio.to_thread(home.publish, press=True)
        await asyncio.to_thread(_wait, lambda: len(home.alerts()) == 1, 30, "the SOS never stored", w1)
        await asyncio.to_thread(webhook.wait, 2, 60)
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
        # InfluxDB is still stopped: the page did not wait for the partition's history.
        assert f"partition {home.partition}: restored from" not in w1.log.read_text()

        own_influxd.start()
        await asyncio.to_thread(w1.wait_restored, home.site, partitions=home.cluster.partitions, timeout=60)
        w1.stop()  # a graceful stop waits until every alert raised is stored
        store = AlertStore(url=home.database_url)
        try:
            (alert,) = store.list_alerts(site=home.site)
        finally:
            store.close()
        assert alert.count == 1, "the restored engine's catch-up raised the press again"
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
    finally:
        if w1 is not None:
            w1.stop()
        postgres_server.drop_database(db_name)


@pytest.mark.scale  # 17-48 s: PostgreSQL's restart, the raise's backoff (up to 10 s)
async def test_an_sos_pressed_while_postgresql_is_down_is_stored_and_paged_when_it_is_back(
    home_on: Callable[[str], _Home], own_postgres: Postgres, webhook: Webhook
) -> None:
    """The worker's insert fails (the postmaster SIGKILLed); the press is durable and acknowledged meanwhile."""
    home = home_on(own_postgres.create_database("eldercare"))
    w1 = await asyncio.to_thread(home.worker, "w1")
    try:
        kill_postmaster(own_postgres)
        await asyncio.to_thread(home.publish, press=True)
        await asyncio.to_thread(
            _wait, lambda: "could not raise call_button" in w1.log.read_text(), 30, "the failed insert", w1
        )
        own_postgres.start()
        await asyncio.to_thread(_wait, lambda: len(home.alerts()) == 1, 60, "the SOS never stored", w1)
        await asyncio.to_thread(webhook.wait, 2, 60)
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
    finally:
        w1.stop()


@pytest.mark.scale  # 29-36 s: PostgreSQL's restart, a lease expiry
async def test_an_sos_not_yet_stored_survives_a_kill_of_its_worker_after_a_snapshot_period(
    home_on: Callable[[str], _Home], own_postgres: Postgres, webhook: Webhook, cluster8: NatsCluster
) -> None:
    """No partition snapshot is stored over a reading whose alert the store has not taken yet.

    The next owner replays only what the snapshot has not seen: a snapshot stored after the press, with its alert
    still unstored (PostgreSQL down), then a SIGKILL of the worker, lost the SOS for good.
    """
    home = home_on(own_postgres.create_database("eldercare"))
    workers = [await asyncio.to_thread(home.worker, "w1")]
    try:
        await asyncio.to_thread(home.publish, press=False)  # a change: the partition gets a first snapshot
        for _ in range(100):
            if (revision := await _snapshot_revision(cluster8, home.partition)) is not None:
                break
            await asyncio.sleep(0.1)
        assert revision is not None, "no first snapshot"
        kill_postmaster(own_postgres)
        await asyncio.to_thread(home.publish, press=True)
        await asyncio.to_thread(
            _wait, lambda: "could not raise call_button" in workers[0].log.read_text(), 30, "the failed insert"
        )
        # Snapshot periods (0.5 s) have passed since: the snapshot was stored over the press, or held back.
        for _ in range(100):
            if await _snapshot_revision(cluster8, home.partition) != revision:
                break
            if "snapshot held back" in workers[0].log.read_text():
                break
            await asyncio.sleep(0.1)
        workers[0].kill()
        own_postgres.start()
        workers.append(await asyncio.to_thread(home.worker, "w2"))
        await asyncio.to_thread(_wait, lambda: len(home.alerts()) == 1, 60, "the SOS never stored", *workers)
        await asyncio.to_thread(webhook.wait, 2, 60)
        assert sorted(m["path"] for m in webhook.messages) == ["/W01", "/W02"]
    finally:
        for w in workers:
            w.stop()


async def test_an_unreadable_partition_snapshot_is_rebuilt_from_influxdb_and_the_partition_watched(
    home_on: Callable[[str], _Home], postgres_server: Postgres, cluster8: NatsCluster
) -> None:
    """A torn or foreign snapshot object never keeps a partition unwatched (the embedded backend's fault (c)).

    Already so before this test: ``PartitionWorker._restore`` takes an undecodable snapshot (``SnapshotError``) or an
    unreadable object (``SnapshotUnavailableError``) as none and rebuilds the partition from 6 h of InfluxDB.
    """
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    home = home_on(postgres_server.create_database(db_name))
    async with NatsBus(servers=cluster8.urls, name="seed") as bus:
        assert await (await bus.snapshots(replicas=3)).seed(home.partition, b"\x93torn snapshot")
    workers = [await asyncio.to_thread(home.worker, "w1")]
    try:
        await asyncio.to_thread(workers[0].wait_restored, home.site, partitions=home.cluster.partitions, timeout=60)
        assert f"partition {home.partition}: snapshot unusable" in workers[0].log.read_text()
        await asyncio.to_thread(home.publish, press=True)
        await asyncio.to_thread(_wait, lambda: len(home.alerts()) == 1, 30, "the SOS never stored", *workers)
    finally:
        for w in workers:
            w.stop()
        postgres_server.drop_database(db_name)
