"""The broker configuration shipped for production, attacked with a gateway's own password (real mosquitto).

The shipped ``deploy/mosquitto/eldercare.conf`` once differed from the test stack's: one shared account file, no
``use_username_as_clientid``, so a gateway's password could connect under the backend's client id and kick the
backend off the broker for every home (an operator measured 100 published, 98 stored). It is now rendered by the
same functions as the test stack's (``eldercare broker config``) and attacked here as Debian runs it: Debian's main
``mosquitto.conf`` including ``conf.d``, accounts written by ``eldercare broker provision``'s own writer.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from alerts.store.gateway_accounts import GatewayAccount
from eldercare.broker_cli import reload_broker, write_accounts
from eldercare.certs import server_certificate
from eldercare.cli import app
from eldercare.servers._child import ensure_package, free_port, port_open
from eldercare.servers.mosquitto import production_conf
from gateway.provisioning import gateway_password

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-gateway-secret"
BACKEND_PASSWORD = "backend-pass-123"


def test_the_shipped_config_is_the_rendered_one() -> None:
    shipped = (REPO / "deploy" / "mosquitto" / "eldercare.conf").read_text()
    assert shipped == production_conf()
    printed = CliRunner().invoke(app, ["broker", "config"])
    assert printed.exit_code == 0 and printed.stdout == shipped
    for line in ("per_listener_settings true", "use_username_as_clientid true", "message_size_limit 65536"):
        assert line in shipped.splitlines()
    assert "listener 1883 127.0.0.1" in shipped.splitlines()  # the backend's listener is never public


class Production:
    """Debian's mosquitto layout in a temporary directory, running the rendered production config."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.accounts = root / "eldercare"
        self.certs = root / "certs"
        self.pid_file = root / "mosquitto.pid"
        self.backend_port = free_port()
        self.gateway_port = free_port()
        self.tls = server_certificate(self.certs)
        conf_d = root / "conf.d"
        conf_d.mkdir()
        (root / "persist").mkdir()
        # What Debian's /etc/mosquitto/mosquitto.conf holds, with paths moved here (and root kept as the user:
        # the broker would otherwise drop to 'mosquitto', which cannot read this private temporary directory).
        (root / "mosquitto.conf").write_text(
            f"pid_file {self.pid_file}\npersistence true\npersistence_location {root}/persist/\n"
            f"log_dest stderr\nuser root\ninclude_dir {conf_d}\n"
        )
        (conf_d / "eldercare.conf").write_text(
            production_conf(
                accounts_dir=self.accounts,
                certs_dir=self.certs,
                backend_port=self.backend_port,
                gateway_host="127.0.0.1",
                gateway_port=self.gateway_port,
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def provision(self, accounts: list[GatewayAccount]) -> None:
        write_accounts(
            self.accounts, accounts, secret=SECRET, backend_user="backend", backend_password=BACKEND_PASSWORD
        )

    def start(self) -> None:
        binary = ensure_package("/usr/sbin/mosquitto", "mosquitto")
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.root / "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 20
        while not (port_open(self.backend_port) and port_open(self.gateway_port) and self.pid_file.exists()):
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            assert time.monotonic() < deadline, "mosquitto did not open its listeners"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Production]:
    broker = Production(tmp_path)
    broker.provision([GatewayAccount(site="h0002"), GatewayAccount(site="h0003")])
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Client:
    """A paho client that records what it sees (connects, disconnects, messages)."""

    def __init__(self, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=MQTTProtocolVersion.MQTTv311
        )
        self.connected = threading.Event()
        self.refused: list[str] = []
        self.disconnects = 0
        self.messages: list[tuple[str, bytes]] = []
        self.got = threading.Condition()
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        if rc.is_failure:
            self.refused.append(str(rc))
        else:
            self.connected.set()

    def _on_disconnect(self, *_a: object) -> None:
        self.disconnects += 1

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.got:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.got.notify_all()

    def connect(self, port: int, user: str, password: str, *, tls: Path | None = None) -> Client:
        self.client.username_pw_set(user, password)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not (self.connected.is_set() or self.refused) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def subscribe(self, pattern: str) -> None:
        self.client.subscribe(pattern, qos=1)
        assert self.subscribed.wait(10), "no SUBACK"

    def wait_for(self, topic: str, timeout: float = 10) -> bytes:
        with self.got:
            assert self.got.wait_for(lambda: any(t == topic for t, _ in self.messages), timeout), self.messages
            return next(p for t, p in self.messages if t == topic)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)  # PUBACK: the broker has handled it

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _gateway(production: Production, site: str, *, client_id: str | None = None, generation: int = 0) -> Client:
    return Client(client_id or site).connect(
        production.gateway_port, site, gateway_password(SECRET, site, generation), tls=production.tls.ca
    )


def test_a_gateway_password_cannot_kick_the_backend_off_the_production_broker(production: Production) -> None:
    backend = Client("eldercare-backend").connect(production.backend_port, "backend", BACKEND_PASSWORD)
    assert backend.connected.is_set()
    backend.subscribe("ec/v1/+/+/+/event")
    # The attack: h0002's own password, the backend's client id, on the gateways' TLS listener.
    attacker = _gateway(production, "h0002", client_id="eldercare-backend")
    assert attacker.connected.is_set()  # accepted, but as client "h0002": the backend's session is not touched
    honest = _gateway(production, "h0003")
    for n in range(20):
        honest.publish("ec/v1/h0003/button/b1/event", f'{{"n":{n}}}'.encode())
    marker = "ec/v1/h0003/button/b2/event"
    honest.publish(marker, b'{"last":true}')
    backend.wait_for(marker)
    assert backend.disconnects == 0
    assert len([t for t, _ in backend.messages if t == "ec/v1/h0003/button/b1/event"]) == 20
    for c in (attacker, honest, backend):
        c.close()


def test_a_gateway_account_cannot_log_in_on_the_backend_listener(production: Production) -> None:
    c = Client("h0002").connect(production.backend_port, "h0002", gateway_password(SECRET, "h0002"))
    assert c.refused and not c.connected.is_set()
    c.close()


def test_a_revoked_gateway_is_cut_off_at_once_and_its_old_password_dies(production: Production) -> None:
    backend = Client("eldercare-backend").connect(production.backend_port, "backend", BACKEND_PASSWORD)
    backend.subscribe("ec/v1/+/+/+/event")
    stolen = _gateway(production, "h0003")
    other = _gateway(production, "h0002")
    other.publish("ec/v1/h0002/door/d1/event", b"{}")
    backend.wait_for("ec/v1/h0002/door/d1/event")  # the subscription is in place
    # h0003's box is stolen: revoked (generation 1), the files rewritten, the broker told (SIGHUP). A home added
    # in the same write (h0009) shows when the broker has re-read them: a probe as h0003 itself would take the
    # stolen box's client id over (it is the username) and disconnect it, hiding what a revocation does.
    production.provision(
        [
            GatewayAccount(site="h0002"),
            GatewayAccount(site="h0003", generation=1, revoked_ms=1),
            GatewayAccount(site="h0009"),
        ]
    )
    assert reload_broker(production.pid_file) == production.proc.pid  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while not (probe := _gateway(production, "h0009")).connected.is_set():
        assert time.monotonic() < deadline, "the broker did not re-read its password file"
        probe.close()
        time.sleep(0.1)
    probe.close()
    # The broker re-checks connected clients on the reload: the stolen box's connection is closed at once, and its
    # client's automatic reconnects are refused.
    deadline = time.monotonic() + 10
    while stolen.disconnects == 0:
        assert time.monotonic() < deadline, "the revoked gateway stayed connected"
        time.sleep(0.05)
    other.publish("ec/v1/h0002/door/d2/event", b"{}")
    backend.wait_for("ec/v1/h0002/door/d2/event")
    assert not stolen.client.is_connected()
    assert all(not t.startswith("ec/v1/h0003/") for t, _ in backend.messages)
    # Neither its old password nor the next generation's logs in while revoked; reinstated, only the new one does.
    assert _gateway(production, "h0003", client_id="x1").refused
    assert _gateway(production, "h0003", client_id="x2", generation=1).refused
    production.provision([GatewayAccount(site="h0002"), GatewayAccount(site="h0003", generation=1)])
    reload_broker(production.pid_file)
    deadline = time.monotonic() + 10
    while not (new := _gateway(production, "h0003", client_id="x3", generation=1)).connected.is_set():
        assert time.monotonic() < deadline
        new.close()
        time.sleep(0.1)
    new.close()
    assert _gateway(production, "h0003", client_id="x4").refused  # generation 0: the stolen box's, dead for good
    for c in (stolen, other, backend):
        c.close()


def test_the_account_files_are_private_to_root_and_the_broker(tmp_path: Path) -> None:
    out = tmp_path / "eldercare"
    active, revoked = write_accounts(
        out,
        [GatewayAccount(site="h1"), GatewayAccount(site="h2", generation=1, revoked_ms=5)],
        secret=SECRET,
        backend_user="backend",
        backend_password=BACKEND_PASSWORD,
        group=None,
    )
    assert (active, revoked) == (1, 1)
    assert out.stat().st_mode & 0o777 == 0o750
    for name in ("gateways.passwd", "gateways.acl", "backend.passwd", "backend.acl"):
        assert (out / name).stat().st_mode & 0o777 == 0o640
    users = [line.split(":", 1)[0] for line in (out / "gateways.passwd").read_text().splitlines()]
    assert users == ["h1"]  # by user name: a random salt may spell "h2" (it did once, in CI)
    assert "user h2" not in (out / "gateways.acl").read_text().splitlines()
    assert SECRET not in "".join(p.read_text() for p in out.iterdir())
    assert os.listdir(out) and not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_the_broker_commands_provision_revoke_reinstate_from_the_store_and_audit_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.backend import registry_for

    from alerts.store.repository import AlertStore

    db = f"sqlite:///{tmp_path / 'store.db'}"
    store = AlertStore(url=db)
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", db)
    monkeypatch.setenv("ELDERCARE_GATEWAY_SECRET", SECRET)
    monkeypatch.setenv("ELDERCARE_MQTT_PASSWORD", BACKEND_PASSWORD)
    empty = CliRunner().invoke(app, ["broker", "provision", "--dir", str(tmp_path / "acc"), "--no-reload"])
    # A store without homes (the registry not imported, or the wrong store) would take every gateway off.
    assert empty.exit_code == 2 and "holds no home" in empty.output and not (tmp_path / "acc").exists()
    store.import_registry(registry_for("h0007"), now_ms=int(time.time() * 1000))
    store.close()
    for key, value in {
        "ELDERCARE_DATABASE_URL": db,
        "ELDERCARE_GATEWAY_SECRET": SECRET,
        "ELDERCARE_MQTT_PASSWORD": BACKEND_PASSWORD,
        "ELDERCARE_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "acc"
    cli = CliRunner()

    def run(*args: str) -> str:
        result = cli.invoke(app, ["broker", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert (
        "1 gateway accounts written"
        in cli.invoke(app, ["broker", "provision", "--dir", str(out), "--no-reload"]).output
    )
    assert "user h0007" in (out / "gateways.acl").read_text()
    assert run("password", "h0007").strip() == gateway_password(SECRET, "h0007")
    revoked = cli.invoke(app, ["broker", "revoke", "h0007", "--reason", "box stolen", "--dir", str(out), "--no-reload"])
    assert revoked.exit_code == 0 and "0 gateway accounts written" in revoked.output
    assert "h0007" not in (out / "gateways.passwd").read_text()
    refused = cli.invoke(app, ["broker", "password", "h0007"])
    assert refused.exit_code == 2 and "revoked (box stolen)" in refused.output and "Traceback" not in refused.output
    run("reinstate", "h0007", "--dir", str(out), "--no-reload")
    assert run("password", "h0007").strip() == gateway_password(SECRET, "h0007", 1) != gateway_password(SECRET, "h0007")
    unknown = cli.invoke(app, ["broker", "revoke", "nope", "--reason", "x", "--dir", str(out), "--no-reload"])
    assert unknown.exit_code == 2 and "no registered home 'nope'" in unknown.output
    store = AlertStore(url=db)
    actions = [(e.action, e.entity_id, e.channel) for e in store.audit_entries() if e.action.startswith("gateway.")]
    store.close()
    assert [a for a, _, _ in actions] == [
        "gateway.provision",
        "gateway.password",
        "gateway.revoke",
        "gateway.provision",
        "gateway.reinstate",
        "gateway.provision",
        "gateway.password",
    ]
    assert all(channel == "cli" for _, _, channel in actions)


def test_the_service_user_writes_the_accounts_into_the_setgid_directory_of_the_install_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's PostgreSQL lets only the service user in (peer auth), so it, not root, writes the files: into
    ``install -d -o eldercare -g mosquitto -m 2750``, where new files take the broker's group."""
    import grp
    import stat

    from eldercare import broker_cli
    from eldercare.broker_cli import BrokerSetupError

    mosquitto_gid = grp.getgrnam("mosquitto").gr_gid
    monkeypatch.setattr(broker_cli.os, "geteuid", lambda: 1000)  # not root: no chown, the directory decides
    good = tmp_path / "good"
    good.mkdir()
    os.chown(good, -1, mosquitto_gid)
    os.chmod(good, 0o2750)
    kwargs = {"secret": SECRET, "backend_user": "backend", "backend_password": BACKEND_PASSWORD}
    assert write_accounts(good, [GatewayAccount(site="h1")], **kwargs) == (1, 0)  # type: ignore[arg-type]
    assert good.stat().st_mode & stat.S_ISGID  # kept: later runs still write files the broker can read
    assert all(p.stat().st_gid == mosquitto_gid and p.stat().st_mode & 0o777 == 0o640 for p in good.iterdir())
    plain = tmp_path / "plain"  # made by hand without the group: the broker could not read what is written
    plain.mkdir()
    with pytest.raises(BrokerSetupError, match="install -d -o eldercare -g mosquitto -m 2750"):
        write_accounts(plain, [GatewayAccount(site="h1")], **kwargs)  # type: ignore[arg-type]


def test_a_provisioning_run_checks_the_broker_accepts_the_backend(production: Production) -> None:
    """A reload cannot add listeners: a broker whose new config was never restarted into is caught here."""
    from pydantic import SecretStr

    from eldercare.broker_cli import BrokerSetupError, check_backend
    from eldercare.settings import Settings

    settings = Settings(
        mqtt_host="127.0.0.1", mqtt_port=production.backend_port, mqtt_password=SecretStr(BACKEND_PASSWORD)
    )
    assert f"accepts the backend's account on 127.0.0.1:{production.backend_port}" in check_backend(settings)
    missing = Settings(mqtt_host="127.0.0.1", mqtt_port=free_port(), mqtt_password=SecretStr(BACKEND_PASSWORD))
    with pytest.raises(BrokerSetupError, match="restart it"):
        check_backend(missing, timeout_s=0.5)


def test_broker_check_says_how_long_the_brokers_certificates_stay_valid(production: Production, tmp_path: Path) -> None:
    """Nothing told an operator that the broker's certificate (825 days) was about to lapse, which cuts every home
    off at once: `eldercare broker check` now says how long the CA and server certificate stay valid, warns within
    30 days and fails once one has expired."""
    import time

    from typer.testing import CliRunner

    from eldercare.broker_cli import BrokerSetupError, check_certificates
    from eldercare.certs import issue, make_ca
    from eldercare.cli import app
    from eldercare.settings import Settings

    tls = tmp_path / "tls"
    make_ca(tls)
    issue(tls, "server", hosts=["127.0.0.1"], days=3)  # renewed too late
    env = {"ELDERCARE_MQTT_HOST": "127.0.0.1", "ELDERCARE_MQTT_PORT": str(production.backend_port),
           "ELDERCARE_MQTT_PASSWORD": BACKEND_PASSWORD, "ELDERCARE_BACKUP_TLS_DIR": str(tls)}  # fmt: skip
    res = CliRunner().invoke(app, ["broker", "check"], env=env, terminal_width=200)
    assert res.exit_code == 0, res.output
    assert f"accepts the backend's account on 127.0.0.1:{production.backend_port}" in res.output
    assert "ca.crt valid until" in res.output  # the CA: 10 years
    assert "warning: server.crt expires on" in res.output and "in 3 days" in res.output
    settings = Settings(backup_tls_dir=tls)
    with pytest.raises(BrokerSetupError, match=r"server\.crt expired on .*every gateway refuses the broker"):
        check_certificates(settings, now_s=time.time() + 4 * 86400)
    assert check_certificates(Settings(backup_tls_dir=None)) == []  # kept elsewhere: nothing to say
