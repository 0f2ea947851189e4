"""``eldercare nats-accounts``: the files every node includes, checked by the real nats-server (issue 18)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import bcrypt
import pytest
from typer.testing import CliRunner

from eldercare.cli import app
from gateway.provisioning import gateway_password
from ingest.partitions import partition_of

pytestmark = pytest.mark.integration

ENV = {
    "ELDERCARE_GATEWAY_SECRET": "a-gateway-secret-of-some-length",
    "ELDERCARE_NATS_USER": "eldercare-worker",
    "ELDERCARE_NATS_PASSWORD": "a-worker-password-0123",
    "ELDERCARE_NATS_ROUTE_PASSWORD": "a-route-password-0123",
}


def test_nats_accounts_writes_private_files_a_node_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"sites": [{"site": "h0001", "devices": []}, {"site": "h0002", "devices": []}]}))
    monkeypatch.setenv("ELDERCARE_REGISTRY_PATH", str(registry))
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "auth"
    result = CliRunner().invoke(app, ["nats-accounts", "--out", str(out)])
    assert result.exit_code == 0, result.output
    accounts, cluster = out / "accounts.conf", out / "cluster-auth.conf"
    assert {p.stat().st_mode & 0o777 for p in (accounts, cluster)} == {0o600}
    text = accounts.read_text()
    assert ENV["ELDERCARE_GATEWAY_SECRET"] not in text and ENV["ELDERCARE_NATS_PASSWORD"] not in text
    users = {u["user"]: u for u in (json.loads(line.rstrip(",")) for line in text.splitlines() if '"user"' in line)}
    assert sorted(users) == ["eldercare-worker", "h0001", "h0002"]
    secret = ENV["ELDERCARE_GATEWAY_SECRET"]
    assert bcrypt.checkpw(gateway_password(secret, "h0001").encode(), users["h0001"]["password"].encode())
    assert not bcrypt.checkpw(gateway_password(secret, "h0002").encode(), users["h0001"]["password"].encode())
    assert users["h0001"]["allowed_connection_types"] == ["MQTT"]
    route_hash = re.search(r'password: "([^"]+)"', cluster.read_text())
    assert route_hash and bcrypt.checkpw(ENV["ELDERCARE_NATS_ROUTE_PASSWORD"].encode(), route_hash[1].encode())
    node = tmp_path / "node.conf"  # nats-server resolves include paths relative to the including file
    node.write_text(
        "server_name: n1\nlisten: 127.0.0.1:4222\ncluster {\n  name: ec\n  listen: 127.0.0.1:6222\n"
        '  include "auth/cluster-auth.conf"\n}\ninclude "auth/accounts.conf"\n'
    )
    cmd = ["/usr/sbin/nats-server", "-t", "-c", str(node)]
    check = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert "is valid" in check.stdout + check.stderr, check.stdout + check.stderr


def test_nats_accounts_refuses_a_short_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"sites": [{"site": "h0001", "devices": []}]}))
    monkeypatch.setenv("ELDERCARE_REGISTRY_PATH", str(registry))
    for key, value in {**ENV, "ELDERCARE_NATS_PASSWORD": "short"}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["nats-accounts", "--out", str(tmp_path / "auth")])
    assert result.exit_code == 2 and "worker password must be at least 16 characters" in result.output
    assert not (tmp_path / "auth").exists()


def test_the_permission_examples_hold() -> None:
    """The doctests of :mod:`ingest.nats_auth` (the partition in the example is the mapping's own hash)."""
    import doctest

    import ingest.nats_auth

    result = doctest.testmod(ingest.nats_auth)
    assert result.failed == 0 and result.attempted > 0


def test_nats_accounts_writes_the_bridge_user_with_its_homes_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ELDERCARE_NATS_BRIDGE_USER / _PASSWORD: an MQTT-only user allowed the registry homes' uplinks and commands."""
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"sites": [{"site": "h0001", "devices": []}, {"site": "h0002", "devices": []}]}))
    monkeypatch.setenv("ELDERCARE_REGISTRY_PATH", str(registry))
    bridge_password = "a-bridge-password-0123"
    env = {**ENV, "ELDERCARE_NATS_BRIDGE_USER": "edge-1", "ELDERCARE_NATS_BRIDGE_PASSWORD": bridge_password}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "auth"
    result = CliRunner().invoke(app, ["nats-accounts", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / "accounts.conf").read_text()
    assert bridge_password not in text
    users = {u["user"]: u for u in (json.loads(line.rstrip(",")) for line in text.splitlines() if '"user"' in line)}
    bridge = users["edge-1"]
    assert bcrypt.checkpw(bridge_password.encode(), bridge["password"].encode())
    assert bridge["allowed_connection_types"] == ["MQTT"]
    assert bridge["permissions"] == {
        "publish": {
            "allow": [
                f"part.{partition_of(site)}.ec.v1.{site}.*.*.{kind}"
                for site in ("h0001", "h0002")
                for kind in ("telemetry", "event", "status")
            ]
        },
        "subscribe": {"allow": ["ec.v1.h0001.*.*.cmd", "ec.v1.h0002.*.*.cmd", "$MQTT.sub.>"]},
    }
    node = tmp_path / "node.conf"
    node.write_text('server_name: n1\nlisten: 127.0.0.1:4222\ninclude "auth/accounts.conf"\n')
    check = subprocess.run(
        ["/usr/sbin/nats-server", "-t", "-c", str(node)], capture_output=True, text=True, check=False
    )
    assert "is valid" in check.stdout + check.stderr, check.stdout + check.stderr

    # A short bridge password is refused, and nothing is written.
    monkeypatch.setenv("ELDERCARE_NATS_BRIDGE_PASSWORD", "short")
    result = CliRunner().invoke(app, ["nats-accounts", "--out", str(tmp_path / "auth2")])
    assert result.exit_code == 2 and "bridge password must be at least 16 characters" in result.output
    assert not (tmp_path / "auth2").exists()


def test_nats_accounts_from_the_store_leave_a_revoked_gateway_out_and_use_a_reinstated_ones_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clustered mode honours ``eldercare broker revoke`` / ``reinstate`` as the mosquitto accounts do."""
    from support.backend import registry_for

    from alerts.store.gateway_accounts import GatewayAccounts
    from alerts.store.repository import AlertStore

    db = f"sqlite:///{tmp_path / 'store.db'}"
    store = AlertStore(url=db)
    doc = registry_for("h0001")
    doc["sites"].append({**doc["sites"][0], "site": "h0002", "gateway": "gw-h0002", "residents": []})
    store.import_registry(doc, now_ms=1)
    accounts = GatewayAccounts(store)
    accounts.revoke("h0001", reason="box stolen", actor="cli:test", now_ms=2)
    accounts.reinstate("h0001", actor="cli:test", now_ms=3)
    accounts.revoke("h0002", reason="moved out", actor="cli:test", now_ms=4)
    store.close()
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", db)
    monkeypatch.delenv("ELDERCARE_REGISTRY_PATH", raising=False)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "auth"
    result = CliRunner().invoke(app, ["nats-accounts", "--out", str(out), "--from-store"])
    assert result.exit_code == 0, result.output
    text = (out / "accounts.conf").read_text()
    users = {u["user"]: u for u in (json.loads(line.rstrip(",")) for line in text.splitlines() if '"user"' in line)}
    assert sorted(users) == ["eldercare-worker", "h0001"]  # h0002 revoked: no account on the cluster
    secret, hashed = ENV["ELDERCARE_GATEWAY_SECRET"], users["h0001"]["password"].encode()
    assert bcrypt.checkpw(gateway_password(secret, "h0001", 1).encode(), hashed)
    assert not bcrypt.checkpw(gateway_password(secret, "h0001").encode(), hashed)  # the stolen box's key
