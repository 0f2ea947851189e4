"""The local stack's broker: per-gateway accounts and ACLs enforced by the real mosquitto."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from eldercare.servers._child import MAX_OPEN_FILES
from eldercare.stack import Broker

pytestmark = pytest.mark.integration


def _pub(broker: Broker, user: str, password: str, topic: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-u",
            user,
            "-P",
            password,
            "-t",
            topic,
            "-m",
            "{}",
            "-q",
            "1",
            "-V",
            "mqttv5",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_gateway_account_works_after_provisioning(broker: Broker, unique_site: str) -> None:
    assert not broker.can_connect(unique_site, broker.gateway_password(unique_site))
    broker.provision([unique_site])
    assert broker.can_connect(unique_site, broker.gateway_password(unique_site))
    assert not broker.can_connect(unique_site, "wrong-password")


def test_gateway_cannot_publish_to_another_site(broker: Broker, unique_site: str) -> None:
    other = unique_site + "x"
    broker.provision([unique_site, other])
    pw = broker.gateway_password(unique_site)
    own = _pub(broker, unique_site, pw, f"ec/v1/{unique_site}/door/d1/event")
    assert own.returncode == 0, own.stderr
    foreign = _pub(broker, unique_site, pw, f"ec/v1/{other}/door/d1/event")
    assert "Not authorized" in foreign.stderr
    downstream = _pub(broker, unique_site, pw, f"ec/v1/{unique_site}/call_button/b1/cmd")
    assert "Not authorized" in downstream.stderr


def test_broker_may_hold_ten_thousand_connections(tmp_path: Path) -> None:
    """Launched from a shell with the usual soft limit of 1024, the broker still gets the hard limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    b = Broker(data_dir=tmp_path, secret=secrets.token_urlsafe(32))
    try:
        b.start()
        proc = b.server.proc
        assert proc is not None
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        child = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
    finally:
        b.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert child == (MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)) > 1024
