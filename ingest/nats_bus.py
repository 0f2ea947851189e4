"""The one module that talks to NATS (nats-py): partition leases and partition consumers (docs/scale-out.md).

Leases:

A lease is the key ``p{P}`` in bucket ``ec-owners`` (history 1, TTL = the lease time): :meth:`PartitionLeases.acquire`
creates it only if absent, :meth:`~PartitionLeases.renew` is a compare-and-set on the revision the owner wrote last,
:meth:`~PartitionLeases.release` deletes it on the same condition. nats-server 2.9 tells no watcher when a key
expires, so a contender polls :meth:`~PartitionLeases.acquire`. Fencing is local and conservative (see
:class:`ingest.partitions.Lease`): the owner stops acknowledging and alerting at its own deadline, before the server
lets anyone else in.

Consumers: devices publish MQTT QoS 1 to any node; nats-server maps ``ec/v1/{site}/…`` to the subject
``part.{P}.ec.v1.{site}.…`` and PUBACKs only after storing it in its internal, replicated stream ``$MQTT_msgs``
(interest retention). Each partition has one durable pull consumer on that stream, named per lease epoch
(``ec-p{P}-e{revision}``): a new owner creates its epoch's consumer at the old one's ack floor + 1, *then* deletes
the old one, so a stale owner can no longer fetch or acknowledge anything (research/scaleout_nats.md, 2e); the lease
deadline fences it meanwhile. The old one is deleted only once the new one is on every replica (else a lagging
replica finds no interest and drops messages); until then the owner keeps it and retires it later. An own stream
capturing ``part.>`` is deliberately not used: it lost PUBACKed messages when its leader died.

Snapshots: each owner stores its partition's detection state (an engine snapshot) as the object ``p{P}-e{epoch}``
in the replicated object store ``ec-snapshots``; the key ``snap.p{P}`` of bucket ``ec-snapshots-heads`` names the
current one and moves forward by compare-and-set only (:class:`PartitionSnapshots`), so neither a fenced owner nor
one paused between its lease check and its write can replace a newer snapshot. The next owner starts from it plus
the readings InfluxDB stored since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Final, Self

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectMeta,
    ObjectMetaOptions,
    ObjectStoreConfig,
    StorageType,
)
from nats.js.client import JetStreamContext
from nats.js.errors import (
    APIError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
    ObjectDeletedError,
    ObjectNotFoundError,
)
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from gateway.listener import RawMessage
from ingest.partitions import Lease, LeaseLostError

_LOG = logging.getLogger(__name__)
_ACQUIRE_TRIES: Final = 3
"""Creates of a lease that expired in the middle of one (see :meth:`PartitionLeases.acquire`)."""
CONNECTION_LOG_EVERY_S: Final = 30.0
"""Connection failures are logged once per this period (with the count of those in between)."""
OWNERS_BUCKET = "ec-owners"
MEMBERS_BUCKET = "ec-workers"
SNAPSHOTS_BUCKET = "ec-snapshots"
DEFAULT_LEASE_S = 10.0
Z2M_NAMES_BUCKET = "ec-z2m-names"
MQTT_STREAM = "$MQTT_msgs"
"""nats-server's internal stream of MQTT QoS 1 messages (2.9.x); the only lossless place to consume from."""
MQTT_SUBJECT_PREFIX = "$MQTT.msgs."
ACK_WAIT_S = 30.0
MAX_MESSAGE_BYTES = 65536
"""Largest message ``$MQTT_msgs`` stores (the nodes' ``max_payload``; the contract's own limit is 4 KiB)."""
RETAINED_STREAM = "$MQTT_rmsgs"
"""nats-server's stream of MQTT retained messages: one per topic, kept until replaced (2.9.x)."""
MAX_RETAINED_BYTES = 64 * 1024 * 1024
"""Bound of ``$MQTT_rmsgs`` per node: beyond it the oldest retained messages go. Nothing of the contract needs a
retained uplink (the workers read ``$MQTT_msgs``), so the bound only stops a gateway that fills it."""
MAX_RETAINED_AGE_S = 24 * 3600.0
"""Retained messages older than this are dropped (a day: a retained gateway status stays readable meanwhile)."""
CONSUMER_CREATES_AT_ONCE = 16
"""Partition consumers a joining worker creates concurrently on a cluster that has none yet: 2.2 s for 64 on a new
3-node cluster, against 28-32 s one at a time (``eldercare bench join``). Each create waits for its replicas, so
the time is latency, not CPU. One at a time until 2026-12-07: two ``-m scale`` runs with 16 had a test hang, which
the watchdog traced to nats-py's ``KeyValue.keys()`` (``Members.live``, now one bounded request), not to the creates
(docs/scale-out.md, "Joining a new cluster")."""
FETCH_RETRY_S = 0.2
SNAPSHOT_CHUNK_BYTES = 32 * 1024
"""Chunk size of a snapshot object: nats-py's default (128 KiB) exceeds the nodes' ``max_payload`` (64 KiB), and
every snapshot bigger than one chunk was refused (``MaxPayloadError``), so a partition of any size kept none."""
SNAPSHOT_READ_S = 15.0
"""Bound of one read of a snapshot object (a 10,000-home partition's few MB take well under a second)."""
SNAPSHOT_READ_ATTEMPTS = 3
"""Reads of a partition's snapshot, each after reading its pointer again, before the load gives up."""
"""Pause before fetching again after a failed fetch (leader election, reconnect)."""


def consumer_prefix(partition: int) -> str:
    """Name prefix of a partition's consumers (one per lease epoch)."""
    return f"ec-p{partition}-e"


def partition_filter(partition: int) -> str:
    """The consumer filter of a partition on ``$MQTT_msgs``: its contract v1 and Zigbee2MQTT uplinks, in one order.

    A consumer created before Zigbee2MQTT homes were mapped filters ``part.{P}.ec.v1.>`` only; it is replaced by
    one with this filter at the partition's next take-over (docs/scale-out.md, "Zigbee2MQTT homes").
    """
    return f"{MQTT_SUBJECT_PREFIX}part.{partition}.>"


def topic_of(subject: str) -> str:
    """``$MQTT.msgs.part.7.ec.v1.s1.door.d1.event`` → the device's MQTT topic ``ec/v1/s1/door/d1/event``.

    nats-server 2.9.10 turns each ``/`` into ``.`` and writes an empty topic level as the token ``/``
    (``z2m/h1//x`` → ``z2m.h1./.x``, measured); a ``.`` or a space inside a level never gets here (the server
    closes the publisher's connection), so the way back is unambiguous.
    """
    rest = subject.removeprefix(MQTT_SUBJECT_PREFIX)
    if rest.startswith("part."):
        rest = rest.split(".", 2)[2]
    return "/".join("" if token == "/" else token for token in rest.split("."))


class ConsumerMissingError(RuntimeError):
    """Raised when an owned partition's consumer is gone but no newer owner's replaced it: create it again."""


class SnapshotUnavailableError(RuntimeError):
    """Raised when a partition's snapshot could not be read: each attempt's object vanished, timed out or failed."""

    def __init__(self, partition: int, failures: Sequence[str]) -> None:
        super().__init__(f"partition {partition}: snapshot not read in {len(failures)} attempts: {'; '.join(failures)}")
        self.partition = partition
        self.failures = list(failures)


class StreamMissingError(RuntimeError):
    """Raised when ``$MQTT_msgs`` does not exist: MQTT is not enabled, or no device has connected yet."""


def lease_key(partition: int) -> str:
    """The KV key of a partition's lease."""
    return f"p{partition}"


class ConnectionLog:
    """One warning line per NATS connection problem, at most every :data:`CONNECTION_LOG_EVERY_S`.

    nats-py's default error callback logs an ERROR with a full traceback at every failed attempt, and the bus
    retries every 0.2 s: a worker started while NATS was unreachable wrote five tracebacks a second
    (``tests/test_operations.py``). Now: the first failure, then one line per period saying how many more.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Use ``clock`` (monotonic seconds; injectable for tests)."""
        self.clock = clock
        self._last = -CONNECTION_LOG_EVERY_S
        self.suppressed = 0
        self.closing = False
        """Set by :meth:`NatsBus.close`: nats-py calls ``disconnected_cb`` on a deliberate close too."""

    async def error(self, exc: Exception) -> None:
        """nats-py's ``error_cb``: a connection attempt or a connection failed.

        >>> import asyncio, logging, sys
        >>> handler = logging.StreamHandler(sys.stdout)
        >>> _LOG.addHandler(handler)
        >>> t = [0.0]
        >>> log = ConnectionLog(clock=lambda: t[0])
        >>> for t[0] in (0.0, 0.2, 0.4, 30.5):
        ...     asyncio.run(log.error(ConnectionRefusedError(111, "Connect call failed")))
        NATS: ConnectionRefusedError: [Errno 111] Connect call failed; retrying
        NATS: ConnectionRefusedError: [Errno 111] Connect call failed; retrying (2 more since the last line)
        >>> _LOG.removeHandler(handler)
        """
        now = self.clock()
        if now - self._last < CONNECTION_LOG_EVERY_S:
            self.suppressed += 1
            return
        more = f" ({self.suppressed} more since the last line)" if self.suppressed else ""
        _LOG.warning("NATS: %s: %s; retrying%s", type(exc).__name__, exc, more)
        self._last, self.suppressed = now, 0

    async def disconnected(self) -> None:
        """nats-py's ``disconnected_cb``."""
        if self.closing:
            _LOG.info("NATS: connection closed")
        else:
            _LOG.warning("NATS: disconnected; reconnecting to any node")

    async def reconnected(self) -> None:
        """nats-py's ``reconnected_cb``."""
        _LOG.info("NATS: reconnected")
        self._last, self.suppressed = -CONNECTION_LOG_EVERY_S, 0


class NatsBus:
    """A connection to a NATS cluster (fails over between ``servers``) and its JetStream context."""

    def __init__(
        self, *, servers: Sequence[str], name: str, user: str = "", password: str = "", tls_ca: str = ""
    ) -> None:
        """Remember where and as whom to connect; :meth:`connect` (or ``async with``) connects.

        ``user``/``password``: the workers' NATS account on a secured cluster (docs/scale-out.md, "Accounts").
        ``tls_ca``: the CA file that signed the nodes' certificates; the connection is then TLS only, and a node
        whose certificate it did not sign (or that offers no TLS) is refused.
        """
        self.servers = list(servers)
        self.name = name
        self.user = user
        self._password = password
        self.tls_ca = tls_ca
        self._nc: Client | None = None
        self._log = ConnectionLog()
        self.older_kept: dict[str, list[str]] = {}
        """Consumers whose older epochs' consumers were kept (not yet on every replica), with those kept."""

    async def connect(self) -> None:
        """Connect, reconnecting for ever to any node of the cluster (an open connection already made is kept)."""
        if self._nc is not None and not self._nc.is_closed:
            return
        log = self._log = ConnectionLog()
        self._nc = await nats.connect(
            servers=self.servers,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            user=self.user or None,
            password=self._password or None,
            tls=ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else None,
            error_cb=log.error,
            disconnected_cb=log.disconnected,
            reconnected_cb=log.reconnected,
        )

    @property
    def nc(self) -> Client:
        """The connected client."""
        if self._nc is None:
            raise RuntimeError("NatsBus is not connected")
        return self._nc

    async def close(self) -> None:
        """Drain and close the connection."""
        if self._nc is not None and not self._nc.is_closed:
            self._log.closing = True
            await self._nc.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context."""
        return self.nc.jetstream(timeout=10)

    async def ensure_partition_consumers(
        self,
        partitions: int,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_retained_bytes: int = MAX_RETAINED_BYTES,
        max_retained_age_s: float = MAX_RETAINED_AGE_S,
        at_once: int = CONSUMER_CREATES_AT_ONCE,
    ) -> int:
        """Give every partition a consumer (epoch 0) if it has none, so nothing is dropped before it is owned.

        ``$MQTT_msgs`` keeps a message only while some consumer is interested; a partition without a consumer
        would lose its messages. Returns how many consumers were created. Also caps the stream's message size:
        nats-server 2.9.10's MQTT listener ignores ``max_payload`` (a 2 MB QoS 1 publish was stored, replicated
        and PUBACKed); with the cap a bigger publish is refused, not PUBACKed, and its connection closed. And it
        bounds ``$MQTT_rmsgs``: a retained message stays there until its topic gets another, so a gateway could
        fill the nodes' disks with retained messages on ever new device ids (docs/scale-out.md). ``at_once``
        consumers are created concurrently (``eldercare bench join`` compares it with one at a time).
        """
        try:
            info = await self.js.stream_info(MQTT_STREAM)
            if info.config.max_msg_size != max_message_bytes:
                info.config.max_msg_size = max_message_bytes
                await self.js.update_stream(info.config)
            await self._bound_retained(max_retained_bytes, max_retained_age_s)
            infos = await self.js.consumers_info(MQTT_STREAM)
        except NotFoundError:
            raise StreamMissingError(
                f"{MQTT_STREAM} missing: enable the MQTT listener with JetStream and connect one MQTT client"
            ) from None
        names = {i.name for i in infos}
        missing = [p for p in range(partitions) if not any(n.startswith(consumer_prefix(p)) for n in names)]
        # At most CONSUMER_CREATES_AT_ONCE at a time (each waits for its replicas; see the constant).
        gate = asyncio.Semaphore(at_once)

        async def create(p: int) -> None:
            async with gate:
                await self.js.add_consumer(MQTT_STREAM, partition_consumer_config(p, 0, start_seq=None))

        tasks = [asyncio.ensure_future(create(p)) for p in missing]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # The first failure ends the call, as the loop before it did: the creates still waiting at the gate
            # must not go on behind the caller's retry (it lists the consumers and creates what is missing).
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return len(missing)

    async def _bound_retained(self, max_bytes: int, max_age_s: float) -> None:
        """Cap ``$MQTT_rmsgs`` in bytes (oldest go first) and age; the server creates it with neither."""
        try:
            info = await self.js.stream_info(RETAINED_STREAM)
        except NotFoundError:
            return  # created with $MQTT_msgs by the first MQTT connection; bounded on the next join
        cfg = info.config
        if cfg.max_bytes != max_bytes or cfg.max_age != max_age_s or cfg.discard is not DiscardPolicy.OLD:
            cfg.max_bytes, cfg.max_age, cfg.discard = max_bytes, max_age_s, DiscardPolicy.OLD
            await self.js.update_stream(cfg)

    async def take_over_consumer(self, lease: Lease) -> str:
        """Create the lease epoch's consumer at the older epochs' ack floor + 1, then retire the older ones.

        The older ones are deleted only once the new consumer is on every replica (:meth:`retire_older_consumers`);
        otherwise they are kept and the owner retires them later.

        Epochs are lease revisions, which only grow: a consumer of a *newer* epoch means this lease is stale (its
        owner was paused past the TTL and someone took over), so nothing is created or deleted and
        :class:`LeaseLostError` is raised.
        """
        js = self.js
        prefix = consumer_prefix(lease.partition)
        # Read once: the keep-alive task renews the lease (a new revision) while the calls below wait on JetStream.
        # Taking the name before and the epoch after them created a consumer under another name than the one
        # returned and bound, and the owner fenced itself a few seconds later (the NATS-node kill failures).
        epoch = lease.revision
        name = f"{prefix}{epoch}"
        infos = [i for i in await js.consumers_info(MQTT_STREAM) if i.name.startswith(prefix)]
        if any(_epoch(i.name) > epoch for i in infos):
            lease.lost = "a newer owner's consumer exists"
            raise LeaseLostError(lease.partition, lease.lost)
        old = [i for i in infos if _epoch(i.name) < epoch]
        floors = [i.ack_floor.stream_seq for i in old if i.ack_floor is not None and i.ack_floor.stream_seq]
        # With no floor (nothing acknowledged yet) start from the beginning of what the stream holds for us.
        start = (max(floors) if floors else 0) + 1
        if not any(i.name == name for i in infos):
            await js.add_consumer(MQTT_STREAM, partition_consumer_config(lease.partition, epoch, start_seq=start))
        await self.retire_older_consumers(lease.partition, name)
        return name

    async def retire_older_consumers(self, partition: int, consumer: str, *, wait_s: float = 1.0) -> list[str]:
        """Delete the partition's consumers of older epochs than ``consumer`` once it is on every replica.

        Returns the older consumers kept (empty once all are retired); the owner asks again later (its keep-alive
        loop, or the next take-over). ``$MQTT_msgs`` has interest retention: a replica that applies an older
        consumer's deletion before it holds ``consumer`` sees no interest and removes the partition's messages
        (measured: 150 readings lost in 1 of 6 NATS-node kill runs). So they are deleted only while ``consumer``'s
        cluster info shows a leader and every replica current and online, after waiting up to ``wait_s`` for it.
        Nothing is deleted while a newer epoch's consumer exists: its owner decides.
        """
        js = self.js
        prefix, epoch = consumer_prefix(partition), _epoch(consumer)
        names = [i.name for i in await js.consumers_info(MQTT_STREAM) if i.name.startswith(prefix)]
        older = [n for n in names if _epoch(n) < epoch]
        if not older or any(_epoch(n) > epoch for n in names):
            self.older_kept.pop(consumer, None)
            return older
        replicas = (await js.stream_info(MQTT_STREAM)).config.num_replicas or 1
        deadline = time.monotonic() + wait_s
        while not _on_every_replica(await js.consumer_info(MQTT_STREAM, consumer), replicas):
            if time.monotonic() >= deadline:
                if consumer not in self.older_kept:
                    _LOG.info("partition %d: %s not on every replica yet; keeping %s", partition, consumer, older)
                self.older_kept[consumer] = older
                return older
            await asyncio.sleep(0.1)
        for name in older:
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(MQTT_STREAM, name)
        if self.older_kept.pop(consumer, None) is not None:
            _LOG.info("partition %d: %s on every replica now; retired %s", partition, consumer, older)
        return []

    async def partition_source(
        self,
        lease: Lease,
        consumer: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        before_batch: Callable[[list[RawMessage]], Awaitable[None]] | None = None,
    ) -> PartitionSource:
        """The messages of one owned partition, fenced by ``lease`` (see :class:`PartitionSource`)."""
        sub = await self.js.pull_subscribe_bind(durable=consumer, stream=MQTT_STREAM)
        js = self.js
        prefix, epoch = consumer_prefix(lease.partition), _epoch(consumer)

        async def exists() -> bool:
            """False only if a newer owner's consumer replaced ours (then we are fenced).

            A single "consumer not found" is not proof: under load, during elections, a server whose view of the
            cluster lags answered it for consumers that existed, and the owner fenced itself every few seconds
            (measured in the NATS-node kill test). The partition's consumer list decides.
            """
            try:
                await js.consumer_info(MQTT_STREAM, consumer)
            except NotFoundError:
                names = [i.name for i in await js.consumers_info(MQTT_STREAM) if i.name.startswith(prefix)]
                if newer := [n for n in names if _epoch(n) > epoch]:
                    _LOG.warning("partition %d: consumer %s replaced by %s", lease.partition, consumer, newer)
                    return False
                if consumer not in names:
                    raise ConsumerMissingError(f"consumer {consumer} vanished with no newer owner") from None
            return True

        return PartitionSource(sub, lease=lease, clock=clock, consumer_exists=exists, before_batch=before_batch)

    async def members(
        self, *, worker: str, bucket: str = MEMBERS_BUCKET, ttl_s: float = DEFAULT_LEASE_S, replicas: int = 1
    ) -> Members:
        """The live-worker table (heartbeat keys that expire after ``ttl_s``)."""
        kv = await self._bucket(bucket, ttl_s=ttl_s, replicas=replicas)
        return Members(kv, worker=worker, js=self.nc.jetstream(timeout=10), bucket=bucket)

    async def _bucket(self, bucket: str, *, ttl_s: float, replicas: int) -> KeyValue:
        js = self.nc.jetstream(timeout=10)
        try:
            return await js.key_value(bucket)
        except Exception:  # noqa: BLE001 - nats-py raises BucketNotFoundError or a plain NotFoundError
            with contextlib.suppress(APIError):  # another worker created it meanwhile
                return await js.create_key_value(
                    KeyValueConfig(
                        bucket=bucket, history=1, ttl=ttl_s or None, replicas=replicas, storage=StorageType.FILE
                    )
                )
            return await js.key_value(bucket)

    async def snapshots(
        self, *, bucket: str = SNAPSHOTS_BUCKET, replicas: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> PartitionSnapshots:
        """The partitions' detection snapshots: object store ``bucket`` and its pointers (created on first use)."""
        js = self.nc.jetstream(timeout=30)
        try:
            store = await js.object_store(bucket)
        except Exception:  # noqa: BLE001 - nats-py raises BucketNotFoundError or a plain NotFoundError
            try:
                store = await js.create_object_store(
                    bucket, ObjectStoreConfig(bucket=bucket, replicas=replicas, storage=StorageType.FILE)
                )
            except APIError:  # another worker created it meanwhile
                store = await js.object_store(bucket)
        pointers = await self._bucket(f"{bucket}-heads", ttl_s=0, replicas=replicas)
        return PartitionSnapshots(store, pointers, clock=clock)

    async def z2m_names(self, *, bucket: str = Z2M_NAMES_BUCKET, replicas: int = 1) -> Z2mNames:
        """Each Zigbee2MQTT home's friendly names, kept by its partition's owner for the next one."""
        return Z2mNames(await self._bucket(bucket, ttl_s=0, replicas=replicas))

    async def leases(
        self,
        *,
        owner: str,
        bucket: str = OWNERS_BUCKET,
        lease_s: float = DEFAULT_LEASE_S,
        replicas: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> PartitionLeases:
        """The partition-lease table (bucket created on first use with the lease time as its TTL)."""
        js = self.nc.jetstream(timeout=10)
        try:
            kv = await js.key_value(bucket)
        except Exception:  # noqa: BLE001 - nats-py raises BucketNotFoundError or a plain NotFoundError
            kv = await js.create_key_value(
                KeyValueConfig(bucket=bucket, history=1, ttl=lease_s, replicas=replicas, storage=StorageType.FILE)
            )
        return PartitionLeases(kv, owner=owner, lease_s=lease_s, clock=clock)


class Members:
    """Worker heartbeats: a key per live worker, gone ``ttl_s`` after its last :meth:`beat`."""

    def __init__(self, kv: KeyValue, *, worker: str, js: JetStreamContext, bucket: str) -> None:
        """Beat as ``worker`` in bucket ``kv`` (named ``bucket``); ``js`` answers the bounded stream requests."""
        self.kv = kv
        self.worker = worker
        self.js = js
        self.stream = f"KV_{bucket}"
        self.prefix = f"$KV.{bucket}."

    async def beat(self) -> None:
        """Say this worker is alive."""
        await self.kv.put(self.worker, b"1")

    async def leave(self) -> None:
        """Leave at once (a graceful stop), so the others take over without waiting for the TTL.

        The key's message is purged from the bucket's stream: a KV delete leaves a marker message there until the
        TTL, which a listing by subject would read as a live worker.
        """
        with contextlib.suppress(APIError):
            await self.js.purge_stream(self.stream, subject=self.prefix + self.worker)

    async def live(self) -> list[str]:
        """The workers that beat within the TTL, sorted; raises when NATS does not answer in time.

        One stream-info request lists the keys that hold a message (an expired heartbeat's is gone), and a direct
        get per key skips a delete marker (how an older release left). Each is a request with a timeout. Not
        nats-py's ``keys()``: it opens a push watcher (an ordered consumer) per call, left behind for its 5-min
        inactivity threshold (22 after a handful of calls, one per rebalance round in a worker), and waits with no
        bound for the marker that the initial values are in; once that marker never came and a worker's main loop
        hung there for good (2026-12-07, the redelivery scale test under its watchdog).
        """
        info = await self.js.stream_info(self.stream, subjects_filter=self.prefix + ">")
        live: list[str] = []
        for subject in sorted(info.state.subjects or {}):
            name = subject[len(self.prefix) :]
            try:
                await self.kv.get(name)
            except KeyNotFoundError:  # KeyDeletedError too: a delete marker
                continue
            live.append(name)
        return live


class PartitionLeases:
    """Acquire, renew and release partition leases for one worker (``owner``)."""

    def __init__(self, kv: KeyValue, *, owner: str, lease_s: float, clock: Callable[[], float]) -> None:
        """Use bucket ``kv``; ``clock`` is monotonic (injectable for tests)."""
        self.kv = kv
        self.owner = owner
        self.lease_s = lease_s
        self.clock = clock

    async def acquire(self, partition: int) -> Lease | None:
        """Create the lease if nobody holds it; None if another worker does.

        nats-py's ``create`` reads the key after a refused write (to tell a deletion marker from a live lease); a
        lease that expires between the two makes that read raise ``KeyNotFoundError``. The key is free then, so the
        create is tried again (tests/scale/test_scale_nats.py).
        """
        for _ in range(_ACQUIRE_TRIES):
            started = self.clock()
            try:
                rev = await self.kv.create(lease_key(partition), self.owner.encode())
            except KeyWrongLastSequenceError:
                return None
            except KeyNotFoundError:
                continue  # expired in between: free now
            return Lease(partition=partition, owner=self.owner, revision=rev, renewed_at=started, ttl_s=self.lease_s)
        return None  # expired and taken again each time: the next rebalance asks again

    async def renew(self, lease: Lease) -> None:
        """Compare-and-set the lease forward; raise :class:`LeaseLostError` (and mark it lost) if that fails."""
        lease.check(self.clock())
        started = self.clock()
        try:
            rev = await self.kv.update(lease_key(lease.partition), self.owner.encode(), last=lease.revision)
        except KeyWrongLastSequenceError:
            lease.lost = "revision changed (another owner, or expired)"
            raise LeaseLostError(lease.partition, lease.lost) from None
        lease.revision, lease.renewed_at = rev, started

    async def release(self, lease: Lease) -> bool:
        """Delete the lease if it is still ours (graceful hand-over); False if it was not."""
        lost, lease.lost = lease.lost, "released"
        if lost is not None:
            return False
        try:
            await self.kv.delete(lease_key(lease.partition), last=lease.revision)
        except (KeyWrongLastSequenceError, APIError):
            return False
        return True

    async def holder(self, partition: int) -> tuple[str, int] | None:
        """Who holds ``partition`` now (owner, revision), per the server; None if nobody."""
        try:
            entry = await self.kv.get(lease_key(partition))
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return entry.value.decode(), entry.revision


class Z2mNames:
    """The friendly names of each Zigbee2MQTT home (key: the site id), from the last ``bridge/devices`` decoded.

    A worker reads no MQTT retained messages, and Z2M publishes its device list only when it starts, reconnects or
    a device changes; without this, the next owner of a partition dead-lettered every state of its Z2M homes as
    ``unknown_device`` until then (tests/scale/test_scale_z2m.py).
    """

    def __init__(self, kv: KeyValue) -> None:
        """Use bucket ``kv``."""
        self.kv = kv

    async def save(self, site: str, names: bytes) -> None:
        """Keep a home's names (the last write wins: it is the owner's latest ``bridge/devices``)."""
        await self.kv.put(site, names)

    async def get(self, site: str) -> bytes | None:
        """A home's names, or None if no owner kept any.

        One direct get per home, when its first message reaches a new owner: listing the bucket's keys at every
        take-over (nats-py's ``keys()`` creates a consumer each time) slowed the take-overs of a NATS-node kill.
        """
        try:
            entry = await self.kv.get(site)
        except KeyNotFoundError:
            return None
        return entry.value or None


def snapshot_name(partition: int, epoch: int) -> str:
    """The object name of a partition's snapshot written under lease revision ``epoch`` (0: seeded)."""
    return f"p{partition}-e{epoch}"


def snapshot_pointer(partition: int) -> str:
    """The KV key naming a partition's current snapshot object."""
    return f"snap.p{partition}"


class PartitionSnapshots:
    """The latest detection snapshot of each partition, replaced only by compare-and-set (a stale owner cannot).

    Each snapshot is an object named after the lease revision it was written under (``p{P}-e{epoch}``); the KV key
    ``snap.p{P}`` names the current one and moves only forward: a writer refuses if it already names a newer epoch,
    and moves it with a compare-and-set on the revision it read, so an owner paused between its lease check and
    its write (which the lease check alone cannot stop) finds the key moved and writes nothing. The replaced
    object is deleted afterwards.
    """

    def __init__(self, store: ObjectStore, pointers: KeyValue, *, clock: Callable[[], float]) -> None:
        """Use object store ``store`` and pointer bucket ``pointers``; ``clock`` is the leases' monotonic clock."""
        self.store = store
        self.pointers = pointers
        self.clock = clock

    async def _pointer(self, partition: int) -> tuple[str, int, int] | None:
        """(object name, its epoch, the key's revision), or None if the partition has no snapshot yet."""
        try:
            entry = await self.pointers.get(snapshot_pointer(partition))
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        name = entry.value.decode()
        return name, _epoch(name), entry.revision

    async def save(self, lease: Lease, data: bytes) -> None:
        """Replace the partition's snapshot; raise :class:`LeaseLostError` (storing nothing new) once fenced.

        Fenced means: past the lease's local deadline, or a snapshot of a newer epoch is already the current one.
        """
        lease.check(self.clock())
        partition, epoch = lease.partition, lease.revision
        name = snapshot_name(partition, epoch)
        current = await self._pointer(partition)
        if current is not None and current[1] > epoch:
            raise self._stale(lease, current[1])
        await self.store.put(name, data, meta=_meta(name, f"owner={lease.owner} epoch={epoch}"))
        while True:
            try:
                if current is None:
                    await self.pointers.create(snapshot_pointer(partition), name.encode())
                else:
                    await self.pointers.update(snapshot_pointer(partition), name.encode(), last=current[2])
                break
            except KeyWrongLastSequenceError:
                # Moved since we read it: by a newer owner (refuse), or by this owner's own concurrent save (the
                # periodic one and the hand-back's) of an epoch not newer than ours: then try again from there.
                current = await self._pointer(partition)
                if current is not None and current[0] == name:
                    return
                if current is not None and current[1] > epoch:
                    await self._delete(name)
                    raise self._stale(lease, current[1]) from None
        if current is not None and current[0] != name:
            await self._delete(current[0])

    async def _delete(self, name: str) -> None:
        with contextlib.suppress(NotFoundError, ObjectNotFoundError, ObjectDeletedError):
            await self.store.delete(name)

    @staticmethod
    def _stale(lease: Lease, newer: int) -> LeaseLostError:
        lease.lost = f"a newer snapshot (epoch {newer}) was stored"
        return LeaseLostError(lease.partition, lease.lost)

    async def seed(self, partition: int, data: bytes) -> bool:
        """Store a snapshot made outside the cluster (migration from one process), unless one exists already."""
        if await self._pointer(partition) is not None:
            return False
        name = snapshot_name(partition, 0)
        await self.store.put(name, data, meta=_meta(name, "owner=seed epoch=0"))
        try:
            await self.pointers.create(snapshot_pointer(partition), name.encode())
        except KeyWrongLastSequenceError:  # an owner stored one meanwhile: it wins
            return False
        return True

    async def load(
        self, partition: int, *, timeout_s: float = SNAPSHOT_READ_S, attempts: int = SNAPSHOT_READ_ATTEMPTS
    ) -> tuple[bytes, str] | None:
        """The partition's current snapshot and who wrote it (``owner=… epoch=…``), or None if it has none.

        The owner may replace the object while it is read (and delete the old one): nats-py's get of an object
        whose chunks were purged after its info was read waits for ever. Each read is bounded by ``timeout_s``;
        if the object vanished, the read timed out or JetStream answered an error (a node paused or down: 503, no
        responders), the pointer is read again (itself bounded by ``timeout_s``) and followed to the current
        snapshot, up to ``attempts`` times; then :class:`SnapshotUnavailableError` says why, never a raw NATS error
        (the partition worker then rebuilds from InfluxDB instead of leaving the partition unwatched).
        """
        failures: list[str] = []
        for _ in range(attempts):
            try:
                current = await asyncio.wait_for(self._pointer(partition), timeout_s)
            except (TimeoutError, NatsError) as exc:  # a node paused or down: a JetStream error, not a hang
                failures.append(f"pointer not read ({type(exc).__name__})")
                continue
            # Before the compare-and-set a partition's only snapshot was the object ``p{P}`` (no pointer): still read.
            name = current[0] if current is not None else f"p{partition}"
            try:
                result = await asyncio.wait_for(self.store.get(name), timeout_s)
            except (ObjectNotFoundError, ObjectDeletedError, NotFoundError):
                if current is None:
                    return None
                failures.append(f"{name} vanished")
                continue
            except TimeoutError:
                failures.append(f"{name} not read within {timeout_s:g} s")
                continue
            except NatsError as exc:  # e.g. ServiceUnavailableError (503) while the stream's leader moves
                failures.append(f"{name} not read ({type(exc).__name__})")
                continue
            if result.data is None:
                return None
            return bytes(result.data), result.info.description or ""
        raise SnapshotUnavailableError(partition, failures)


def _meta(name: str, description: str) -> ObjectMeta:
    return ObjectMeta(
        name=name, description=description, options=ObjectMetaOptions(max_chunk_size=SNAPSHOT_CHUNK_BYTES)
    )


def _on_every_replica(info: ConsumerInfo, replicas: int) -> bool:
    """True if the consumer has a leader and all its ``replicas`` - 1 followers are current and online."""
    if replicas <= 1:
        return True
    cluster = info.cluster
    if cluster is None or not cluster.leader:
        return False
    peers = cluster.replicas or []
    return len(peers) >= replicas - 1 and all(p.current and not p.offline for p in peers)


def _epoch(consumer: str) -> int:
    return int(consumer.rsplit("-e", 1)[1])


def partition_consumer_config(partition: int, epoch: int, *, start_seq: int | None) -> ConsumerConfig:
    """A partition's durable pull consumer of lease epoch ``epoch`` on ``$MQTT_msgs`` (explicit acks)."""
    return ConsumerConfig(
        durable_name=f"{consumer_prefix(partition)}{epoch}",
        filter_subject=partition_filter(partition),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=20_000,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start_seq else DeliverPolicy.ALL,
        opt_start_seq=start_seq,
    )


class PartitionSource:
    """A :class:`gateway.service.MessageSource` over one partition's consumer: in stream order, acks fenced.

    Messages come as :class:`RawMessage` with the device's MQTT topic, the broker's store time as the received
    time and the stream sequence as ``mid``. :meth:`ack` raises :class:`LeaseLostError` instead of acknowledging
    once the lease is past its deadline or lost: the batch then stays unacknowledged for the next owner.
    """

    connected = True

    def __init__(
        self,
        sub: JetStreamContext.PullSubscription,
        *,
        lease: Lease,
        clock: Callable[[], float],
        consumer_exists: Callable[[], Awaitable[bool]] | None = None,
        check_every_s: float = 5.0,
        before_batch: Callable[[list[RawMessage]], Awaitable[None]] | None = None,
    ) -> None:
        """Wrap a bound pull subscription; ``consumer_exists`` is asked when idle (a fetch only times out).

        ``before_batch`` is awaited with each batch before it is handed out (the worker loads the Z2M names of
        homes it has not seen since taking the partition over).
        """
        self._sub = sub
        self._before_batch = before_batch
        self._exists = consumer_exists
        self._check_every_s = check_every_s
        self.lease = lease
        self.clock = clock
        self._pending: dict[int, Msg] = {}
        self._acks: set[asyncio.Task[None]] = set()
        self.acked = 0
        self.fetch_errors = 0

    @property
    def queue_depth(self) -> int:
        """Fetched but not yet acknowledged."""
        return len(self._pending)

    async def batches(
        self, *, max_batch: int = 500, max_wait_s: float = 0.01
    ) -> AsyncGenerator[list[RawMessage], None]:
        """Fetch batches in stream order until the lease is lost."""
        timeout = max(max_wait_s, 0.5)
        next_check = self.clock() + self._check_every_s
        while True:
            self.lease.check(self.clock())
            try:
                msgs = await self._sub.fetch(batch=max_batch, timeout=timeout)
            except (NatsTimeoutError, TimeoutError):
                if self._exists is not None and self.clock() >= next_check:
                    next_check = self.clock() + self._check_every_s
                    if not await self._exists():  # deleted by a newer owner: fenced, not idle
                        self.lease.lost = "consumer deleted by a newer owner"
                        raise LeaseLostError(self.lease.partition, self.lease.lost) from None
                continue
            except NotFoundError:
                if self._exists is not None and self.clock() >= next_check and not await self._exists():
                    self.lease.lost = "consumer deleted by a newer owner"
                    raise LeaseLostError(self.lease.partition, self.lease.lost) from None
                await asyncio.sleep(FETCH_RETRY_S)
                continue
            except NatsError as exc:
                # A leader election (409 leadership change, 503 no responders) or a reconnect in progress: the
                # consumer and its state are replicated, so fetching again is enough; the lease check above
                # stops us if this lasts past the deadline.
                self.fetch_errors += 1
                if self.fetch_errors == 1 or self.fetch_errors % 20 == 0:
                    _LOG.warning(
                        "partition %d: fetch failed (%s: %s), %d so far; fetching again",
                        self.lease.partition,
                        type(exc).__name__,
                        exc,
                        self.fetch_errors,
                    )
                await asyncio.sleep(FETCH_RETRY_S)
                continue
            batch: list[RawMessage] = []
            for m in msgs:
                meta = m.metadata
                seq = meta.sequence.stream
                self._pending[seq] = m
                received = int(meta.timestamp.timestamp() * 1000) if meta.timestamp else int(time.time() * 1000)
                batch.append(RawMessage(topic_of(m.subject), m.data, seq, 1, False, received))
            if batch:
                if self._before_batch is not None:
                    await self._before_batch(batch)
                yield batch

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge a durable batch, unless fenced (then raise :class:`LeaseLostError`)."""
        self.lease.check(self.clock())
        msgs = [m for m in (self._pending.pop(r.mid, None) for r in messages) if m is not None]
        task = asyncio.get_running_loop().create_task(self._ack_all(msgs))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)
        self.acked += len(msgs)
        return len(msgs)

    async def _ack_all(self, msgs: Sequence[Msg]) -> None:
        for m in msgs:
            await m.ack()

    async def close(self) -> None:
        """Finish sending acknowledgements, hand back what was fetched but not acknowledged, then unsubscribe.

        The NAK lets the consumer deliver those messages again at once (to this owner's next source, or the next
        owner) instead of after the ack wait, so a retried partition neither stalls nor reorders for 30 s.
        """
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)
        pending, self._pending = list(self._pending.values()), {}
        for m in pending:
            with contextlib.suppress(Exception):
                await m.nak()
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()


def downlink_subject(topic: str) -> str:
    """The NATS subject nats-server's MQTT listener maps an MQTT topic to (ids hold no ``.``, so no escaping).

    >>> downlink_subject("ec/v1/h1/gateway/gw-h1/cmd")
    'ec.v1.h1.gateway.gw-h1.cmd'
    """
    return topic.replace("/", ".")


class NatsDownlink:
    """A partition worker's one downlink to the home gateways: ``stored`` confirmations and check-in prompts.

    A gateway subscribes to ``ec/v1/{site}/+/+/cmd`` on any node's MQTT listener; a core NATS publish on the mapped
    subject reaches it (at QoS 0: nothing is queued for a gateway that is offline, as with the confirmations the
    embedded backend sends on mosquitto). The partition mapping covers only uplink types, so ``cmd`` subjects stay
    where the gateways subscribe (:func:`ingest.partitions.nats_mappings`). Implements both
    :class:`gateway.confirm.StoredSender` and :class:`alerts.commands.CommandPublisher`.
    """

    def __init__(self, bus: NatsBus) -> None:
        self.bus = bus
        self.sent = 0

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish one command and flush it to the server (raises while NATS is unreachable)."""
        await self.bus.nc.publish(downlink_subject(topic), payload)
        await self.bus.nc.flush(timeout=5)
        self.sent += 1

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Publish ``messages`` (coalesced confirmations); return how many were sent (0 on failure, logged)."""
        if not messages:
            return 0
        try:
            for topic, payload in messages:
                await self.bus.nc.publish(downlink_subject(topic), payload)
            await self.bus.nc.flush(timeout=5)
        except (NatsError, NatsTimeoutError, OSError) as exc:
            _LOG.warning("downlink: %d messages not sent (%s)", len(messages), type(exc).__name__)
            return 0
        self.sent += len(messages)
        return len(messages)
