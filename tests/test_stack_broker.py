"""The local stack's broker: per-gateway accounts and ACLs enforced by the real mosquitto."""

from __future__ import annotations

import queue
import secrets
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.broker_sessions import end_backend_sessions, end_session, persistent_sessions
from typer.testing import CliRunner

from eldercare.cli import app
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


def _kept_session(broker: Broker, client_id: str, subscribe: str = "") -> bool:
    """Connect ``client_id`` keeping its session (optionally subscribing at QoS 1); True if the broker had one."""
    answers: queue.Queue[bool] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.username_pw_set(broker.backend_user, broker.backend_password)
    client.on_connect = lambda _c, _u, flags, *_: answers.put(bool(flags.session_present))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(broker.host, broker.backend_port)
    client.loop_start()
    try:
        present = answers.get(timeout=10)
        if subscribe:
            client.subscribe(subscribe, qos=1)
            assert subscribed.wait(10)
        return present
    finally:
        client.disconnect()
        client.loop_stop()


def test_the_backend_sessions_a_test_leaves_on_the_shared_broker_are_found_and_ended(broker: Broker) -> None:
    """A session left behind queues every later test's messages (the full run's broker database grew to 107 MB):
    the suite's autouse fixture finds such sessions in the broker's log and ends them."""
    client_id = f"left-{secrets.token_hex(4)}"
    assert not _kept_session(broker, client_id, subscribe="ec/v1/+/+/+/telemetry")
    assert _kept_session(broker, client_id)  # the broker kept it: it would queue every home's telemetry
    assert client_id in persistent_sessions(broker.server.log_path, broker.backend_user)
    assert client_id in end_backend_sessions(broker)
    assert client_id not in persistent_sessions(broker.server.log_path, broker.backend_user)
    assert not _kept_session(broker, client_id)  # gone at the broker too
    end_session(broker, client_id)


def test_broker_end_session_discards_a_retired_backends_sessions_and_refuses_its_own(broker: Broker) -> None:
    """A retired backend id's main and priority sessions keep queueing every home's uplinks until they are ended."""
    retired = f"retired-{secrets.token_hex(4)}"
    for cid in (retired, f"{retired}-priority"):
        _kept_session(broker, cid, subscribe="ec/v1/+/+/+/event")
    env = {
        "ELDERCARE_MQTT_HOST": broker.host,
        "ELDERCARE_MQTT_PORT": str(broker.backend_port),
        "ELDERCARE_MQTT_USERNAME": broker.backend_user,
        "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
        "ELDERCARE_MQTT_CLIENT_ID": "eldercare-backend",
    }
    result = CliRunner().invoke(app, ["broker", "end-session", retired], env=env)
    assert result.exit_code == 0, result.output
    assert f"{retired}: session ended" in result.output and f"{retired}-priority: session ended" in result.output
    # Gone at the broker: asked again, its connack says no session was present for either id.
    again = CliRunner().invoke(app, ["broker", "end-session", retired], env=env)
    assert again.exit_code == 0 and again.output.count("no session kept / 代理未保留该会话") == 2, again.output
    # This backend's own id is refused, with the reason and without a traceback.
    own = CliRunner().invoke(app, ["broker", "end-session", "eldercare-backend"], env=env)
    assert own.exit_code == 2 and "this backend's own client id" in own.output and "Traceback" not in own.output
    # A wrong password is one line too.
    wrong = CliRunner().invoke(app, ["broker", "end-session", retired], env={**env, "ELDERCARE_MQTT_PASSWORD": "x"})
    assert wrong.exit_code == 2 and "refused" in wrong.output and "Traceback" not in wrong.output
