"""Homes → partitions → workers, and the lease fence, without any server (issue 18 item 2)."""

from __future__ import annotations

import pytest

from ingest.partitions import DEFAULT_PARTITIONS, Lease, LeaseLostError, assignment, partition_of, preferred_owner


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
