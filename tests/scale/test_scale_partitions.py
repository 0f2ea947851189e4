"""Homes → partitions → workers, and the lease fence, without any server (issue 18 item 2)."""

from __future__ import annotations

import pytest

from ingest.nats_bus import topic_of
from ingest.partitions import (
    DEFAULT_PARTITIONS,
    Lease,
    LeaseLostError,
    assignment,
    nats_mappings,
    partition_of,
    preferred_owner,
    z2m_name_problem,
)


def test_partition_is_nats_servers_fnv1a_of_the_site() -> None:
    # Values measured on nats-server 2.9.10's {{partition(8,1)}} (research/scaleout_nats.md, 2b); the real
    # mapping is checked against the running cluster in test_scale_nats.py.
    assert partition_of("site0001", 8) == 1
    assert DEFAULT_PARTITIONS == 64
    sites = [f"site{i:04d}" for i in range(1000)]
    counts = [0] * DEFAULT_PARTITIONS
    for s in sites:
        counts[partition_of(s)] += 1
    assert sum(counts) == 1000 and min(counts) > 0  # every partition gets homes


def test_adding_a_worker_moves_only_partitions_to_it() -> None:
    before = {p: preferred_owner(p, ["w1", "w2", "w3"]) for p in range(DEFAULT_PARTITIONS)}
    after = {p: preferred_owner(p, ["w1", "w2", "w3", "w4"]) for p in range(DEFAULT_PARTITIONS)}
    moved = [p for p in before if before[p] != after[p]]
    assert moved and all(after[p] == "w4" for p in moved)  # never from one old worker to another
    shares = assignment(DEFAULT_PARTITIONS, ["w1", "w2", "w3", "w4"])
    assert sorted(p for ps in shares.values() for p in ps) == list(range(DEFAULT_PARTITIONS))
    with pytest.raises(ValueError, match="no live worker"):
        preferred_owner(0, [])


def test_a_lease_fences_at_its_local_deadline_and_once_lost() -> None:
    lease = Lease(partition=7, owner="w1", revision=3, renewed_at=100.0, ttl_s=10.0, margin_s=1.0)
    lease.check(108.9)
    assert lease.valid(108.9) and not lease.valid(109.0)
    with pytest.raises(LeaseLostError, match="partition 7"):
        lease.check(109.0)  # e.g. woken from SIGSTOP after the deadline
    with pytest.raises(LeaseLostError):
        lease.check(100.0)  # lost stays lost, even if the clock looked fine again
    revoked = Lease(partition=1, owner="w1", revision=3, renewed_at=100.0, ttl_s=10.0, lost="revision changed")
    assert not revoked.valid(100.5)


def test_doctests_of_partitions() -> None:
    import doctest

    import ingest.partitions

    result = doctest.testmod(ingest.partitions)
    assert result.failed == 0 and result.attempted > 0


def test_z2m_names_the_cluster_cannot_carry_are_named_with_the_reason() -> None:
    """nats-server 2.9.10 closes the connection on a topic with a space or a dot (tests/scale/test_scale_z2m.py); a
    ``/`` gives a topic level the mapping leaves alone (it cannot tell ``room/lamp`` from ``lamp/set``)."""
    assert z2m_name_problem("door-sensor") is None
    assert z2m_name_problem("0x847127fffe0542eb") is None
    assert "space" in (z2m_name_problem("bedroom button") or "")
    assert "dot" in (z2m_name_problem("kitchen.door") or "")
    assert "/" in (z2m_name_problem("kitchen/gas") or "")
    assert z2m_name_problem("bridge") is not None
    assert z2m_name_problem("tab\there") is not None


def test_a_partition_subject_turns_back_into_the_mqtt_topic() -> None:
    assert topic_of("$MQTT.msgs.part.7.ec.v1.s1.door.d1.event") == "ec/v1/s1/door/d1/event"
    assert topic_of("$MQTT.msgs.part.18.z2m.h1.bridge.devices") == "z2m/h1/bridge/devices"
    assert topic_of("$MQTT.msgs.part.18.z2m.h1.door-sensor.availability") == "z2m/h1/door-sensor/availability"
    # nats-server writes an empty topic level as the token "/" (measured: z2m/h1//x → z2m.h1./.x).
    assert topic_of("$MQTT.msgs.part.18.z2m.h1./.x") == "z2m/h1//x"
    assert topic_of("$MQTT.msgs.part.18.z2m.h1.x./") == "z2m/h1/x/"


def test_z2m_mappings_cover_the_uplinks_and_never_a_command() -> None:
    """Every Z2M uplink the adapter reads matches a mapping source; no Z2M command (``set``, ``get``,
    ``bridge/request``) does, else it would move to ``part.…`` where the bridge's ``z2m/{site}/#`` never sees it."""
    sources = [src for src, _ in nats_mappings(64) if src.startswith("z2m.")]

    def mapped(subject: str) -> bool:
        return any(_matches(src, subject) for src in sources)

    for uplink in ("bridge/state", "bridge/devices", "bridge/event", "bridge/info", "door-sensor", "sos/availability"):
        assert mapped(f"z2m.h1.{uplink.replace('/', '.')}"), uplink
    for command in ("door-sensor/set", "door-sensor/get", "door-sensor/set/state", "bridge/request/permit_join"):
        assert not mapped(f"z2m.h1.{command.replace('/', '.')}"), command
    for _src, dest in nats_mappings(64):
        assert dest.startswith("part.{{partition(64,1)}}.")


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching (``*`` one token, ``>`` the rest)."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)
