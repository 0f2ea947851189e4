"""MQTT over TLS: a home gateway publishes through the broker's TLS listener with certificates from
``eldercare certs`` (local CA); plain text and an untrusted CA are refused there."""

from __future__ import annotations

import queue
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from eldercare.certs import TlsFiles, issue, make_ca, server_certificate
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_call_button_event

pytestmark = [pytest.mark.integration]
SITE = "htls0001"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    out = tmp_path_factory.mktemp("certs")
    done = subprocess.run(
        [sys.executable, "-m", "eldercare.cli", "certs", "--out", str(out), "--host", "localhost",
         "--host", "127.0.0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return TlsFiles(ca=out / "ca.crt", cert=out / "server.crt", key=out / "server.key")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, certs: TlsFiles) -> Iterator[Broker]:
    broker = Broker(data_dir=tmp_path_factory.mktemp("mqtt-tls"), secret="tls-test-secret-0123456789", tls=certs)
    broker.start()
    broker.provision([SITE])
    yield broker
    broker.stop()


def test_certs_are_private_and_chain_to_the_ca(certs: TlsFiles) -> None:
    for key in (certs.key, certs.ca.parent / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.load_cert_chain(str(certs.cert), str(certs.key))  # the key matches the certificate


def test_gateway_publishes_over_tls(tls_broker: Broker, certs: TlsFiles) -> None:
    received: queue.Queue[bytes] = queue.Queue()
    backend = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="backend-tls-test")
    backend.username_pw_set(tls_broker.backend_user, tls_broker.backend_password)
    backend.on_message = lambda _c, _u, msg: received.put(msg.payload)
    subscribed: queue.Queue[int] = queue.Queue()
    backend.on_subscribe = lambda _c, _u, mid, _rc, _p: subscribed.put(mid)
    backend.connect(tls_broker.host, tls_broker.backend_port)
    backend.loop_start()
    try:
        backend.subscribe(f"ec/v1/{SITE}/#", qos=1)
        subscribed.get(timeout=10)
        password = tls_broker.gateway_password(SITE)
        # "localhost" is in the server certificate: the gateway verifies the host name too.
        with GatewayPublisher(site=SITE, password=password, host="localhost", port=tls_broker.tls_port,
                              tls_ca=str(certs.ca)) as gw:  # fmt: skip
            msg = encode_call_button_event(**gw.wire.stamp("btn1"), ts=1_764_000_000_000, event="press")
            gw.publish(msg)
            payloads = []
            while msg.payload not in payloads:
                payloads.append(received.get(timeout=10))
    finally:
        backend.loop_stop()
        backend.disconnect()


def test_tls_listener_refuses_plain_text_and_untrusted_ca(tls_broker: Broker, tmp_path: Path) -> None:
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain-on-tls")
    plain.username_pw_set(SITE, tls_broker.gateway_password(SITE))
    with pytest.raises(OSError):
        plain.connect(tls_broker.host, tls_broker.tls_port)
        plain.loop(timeout=2)
        plain.loop(timeout=2)
        if not plain.is_connected():
            raise ConnectionError("not connected")
    other = make_ca(tmp_path / "other")
    rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rogue-ca")
    rogue.tls_set(ca_certs=str(other.cert))
    with pytest.raises(ssl.SSLError):
        rogue.connect("localhost", tls_broker.tls_port)


def test_server_certificate_names_its_hosts(tmp_path: Path) -> None:
    files = server_certificate(tmp_path, hosts=("broker.example.org", "10.0.0.5"))
    text = subprocess.run(["openssl", "x509", "-in", str(files.cert), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert "DNS:broker.example.org" in text and "IP Address:10.0.0.5" in text
    assert "TLS Web Server Authentication" in text and "Client Authentication" not in text


def test_a_nats_node_certificate_may_also_dial_its_peers(tmp_path: Path) -> None:
    """NATS routes verify both ends: ``eldercare certs --nats-node`` adds clientAuth (a plain server certificate
    was refused by the other nodes: "certificate specifies an incompatible key usage")."""
    done = subprocess.run(
        [sys.executable, "-m", "eldercare.cli", "certs", "--out", str(tmp_path), "--host", "nats1.example.org",
         "--nats-node"], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "server.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text and "DNS:nats1.example.org" in text


def test_client_certificates_can_be_required(tmp_path: Path, certs: TlsFiles) -> None:
    out = certs.ca.parent
    issue(out, SITE, client=True)  # the same CA signs the gateway's client certificate
    broker = Broker(data_dir=tmp_path / "mqtt", secret="tls-test-secret-0123456789", tls=certs,
                    require_client_cert=True)  # fmt: skip
    broker.start()
    try:
        broker.provision([SITE])
        password = broker.gateway_password(SITE)
        client_cert = (str(out / f"{SITE}.crt"), str(out / f"{SITE}.key"))
        with GatewayPublisher(site=SITE, password=password, host="localhost", port=broker.tls_port,
                              tls_ca=str(certs.ca), tls_cert=client_cert) as gw:  # fmt: skip
            assert gw.connect_count == 1
        without = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="no-client-cert")
        without.username_pw_set(SITE, password)
        without.tls_set(ca_certs=str(certs.ca))
        with pytest.raises((ssl.SSLError, OSError)):
            without.connect("localhost", broker.tls_port)
            for _ in range(5):
                without.loop(timeout=0.5)
            if not without.is_connected():
                raise ConnectionError("refused")
    finally:
        broker.stop()


def test_console_speaks_https_with_hsts(certs: TlsFiles, tmp_path: Path) -> None:
    import threading

    import httpx
    import uvicorn

    from alerts.escalation import PolicyBook
    from alerts.links import LinkSigner
    from alerts.notify import AppriseNotifier
    from alerts.queries import StoreBackend
    from alerts.service import AlertService
    from alerts.store.repository import AlertStore
    from dashboards.app import create_app
    from dashboards.serve import console_config
    from eldercare.servers._child import free_port
    from eldercare.settings import Settings

    port = free_port()
    settings = Settings(data_dir=tmp_path, link_secret="x" * 32, public_url=f"https://localhost:{port}")
    store = AlertStore(url=f"sqlite:///{tmp_path / 'store.db'}")
    links = LinkSigner(secret=b"y" * 32, base_url=settings.public_url)
    service = AlertService(store=store, notifier=AppriseNotifier(), policies=PolicyBook(), clock=lambda: 0, links=links)
    app = create_app(settings, backend=StoreBackend(store=store, service=service))
    config = console_config(app, host="127.0.0.1", port=port, tls_cert=str(certs.cert), tls_key=str(certs.key))
    config.lifespan = "off"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        r = httpx.get(f"https://localhost:{port}/login", verify=ssl.create_default_context(cafile=str(certs.ca)))
        assert r.status_code == 200 and r.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://localhost:{port}/login")  # not a publicly trusted certificate
    finally:
        server.should_exit = True
        thread.join(timeout=10)
