"""Fixtures of the scale-out tests: a real 3-node nats-server cluster (JetStream, MQTT) for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.servers.nats import NatsCluster


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Three nodes on free ports with their own stores, partition mapping of 64."""
    with NatsCluster(data_dir=tmp_path_factory.mktemp("nats")) as cluster:
        yield cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster of this test's own (its leases, consumers and MQTT sessions start empty)."""
    with NatsCluster(data_dir=tmp_path / "nats") as c:
        yield c


@pytest.fixture
def cluster8(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster of this test's own mapping to 8 partitions (its streams and consumers come up in a few seconds
    instead of 30); workers on it need ``ELDERCARE_PARTITIONS=8``."""
    with NatsCluster(data_dir=tmp_path / "nats8", partitions=8) as c:
        yield c
