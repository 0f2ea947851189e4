"""Issue 14 acceptance: ``eldercare serve`` (not the demo) against the real servers, first admin by the CLI.

Starts ``eldercare serve --role all`` as a child process configured only through ELDERCARE_* variables, creates
the administrator with ``eldercare admin create --password-file``, checks health, readiness, metrics and the
data directory's permissions (D8), then logs in through the console in Chromium and watches a simulated call
button press arrive.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.backend import registry_for

from eldercare.servers._child import free_port
from eldercare.servers.influxd import Influxd
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_call_button_event, encode_device_status

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ADMIN_PASSWORD = "first admin passphrase 2026"


@dataclass
class Served:
    """A running ``eldercare serve``."""

    url: str
    data_dir: Path
    env: dict[str, str]
    site: str
    process: subprocess.Popen[bytes]
    log: Path


def _cli(*args: str, env: dict[str, str], input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eldercare.cli", *args], env=env, capture_output=True, text=True, timeout=60,
        input=input_text,
    )  # fmt: skip


@pytest.fixture
def served(broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path) -> Iterator[Served]:
    broker.provision([unique_site])
    data_dir = tmp_path / "data"  # created by the CLI, private
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(registry_for(unique_site)), encoding="utf-8")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")},
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_REGISTRY_PATH": str(registry),
        "ELDERCARE_MQTT_HOST": broker.host,
        "ELDERCARE_MQTT_PORT": str(broker.backend_port),
        "ELDERCARE_MQTT_USERNAME": broker.backend_user,
        "ELDERCARE_MQTT_PASSWORD": broker.backend_password,
        "ELDERCARE_MQTT_CLIENT_ID": f"serve-{unique_site}",
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": unique_db,
        "ELDERCARE_LINK_SECRET": "serve-test-link-secret-0123456789",
        "ELDERCARE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    pw_file = tmp_path / "admin-password"
    pw_file.write_text(ADMIN_PASSWORD + "\n", encoding="utf-8")
    pw_file.chmod(0o600)
    created = _cli("admin", "create", "--id", "root", "--name", "管理员", "--password-file", str(pw_file), env=env)
    assert created.returncode == 0, created.stderr
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "eldercare.cli", "serve", "--role", "all", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    ready = False
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                ready = True
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    if not ready:
        process.kill()
        pytest.fail(f"eldercare serve did not become ready:\n{log.read_text()[-3000:]}")
    yield Served(url=url, data_dir=data_dir, env=env, site=unique_site, process=process, log=log)
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_health_readiness_metrics_and_private_data_dir(served: Served) -> None:
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{served.url}/readyz").json()
    assert ready["checks"] == {"broker": "ok", "influxdb": "ok", "database": "ok", "pipeline": "ok"}
    assert ready["pipeline"] == "running"
    # The detection state is rebuilt in the background after start; readiness reports it until it is done.
    deadline = time.monotonic() + 60
    while ready["catching_up"] and time.monotonic() < deadline:
        time.sleep(0.2)
        ready = httpx.get(f"{served.url}/readyz").json()
    assert ready["catching_up"] is False and ready["recovery"]["error"] is None
    metrics = httpx.get(f"{served.url}/metrics")
    assert metrics.status_code == 200
    for name in ("eldercare_gateway_messages_received_total", "eldercare_gateway_dead_letters_total",
                 "eldercare_notification_failures", "eldercare_spool_bytes",
                 "eldercare_gateway_durable_seconds"):  # fmt: skip
        assert name in metrics.text, name
    # D8: personal data and password hashes are readable by the service user only.
    assert stat.S_IMODE(served.data_dir.stat().st_mode) == 0o700
    db = served.data_dir / "eldercare.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    # /docs pulls a CDN: off. The console's pages answer.
    assert httpx.get(f"{served.url}/docs").status_code == 404
    assert httpx.get(f"{served.url}/login").status_code == 200
    # A second admin with the same id is refused with a message, not a traceback.
    again = _cli("admin", "create", "--id", "root", "--password-file", os.devnull, env=served.env)
    assert again.returncode == 1 and "Traceback" not in again.stderr


def test_serve_saves_what_the_engine_learned_for_a_console_of_its_own(served: Served, broker: Broker) -> None:
    """The shipped layout runs ``--role console`` apart from the engine: the running backend saves what it learned
    about each home it watches in the store, where such a console reads it (the page itself: test_dash_checkins)."""
    from alerts.store.learned import SAVED_KEY, LearnedStore
    from alerts.store.repository import AlertStore

    sent_ms = int(time.time() * 1000)
    with GatewayPublisher(site=served.site, password=broker.gateway_password(served.site), port=broker.port) as gw:
        # A live engine watches a home from its first message: a call button's heartbeat.
        gw.publish(encode_device_status(**gw.wire.stamp("btn1"), kind="call_button", ts=int(time.time() * 1000)))
    store = AlertStore(url=f"sqlite:///{served.data_dir / 'eldercare.db'}")
    try:
        deadline = time.monotonic() + 60
        while not (saved := LearnedStore(store).load(served.site)) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        store.close()
    assert saved, served.log.read_text()[-3000:]
    assert saved["personal"] is False and saved["days"] == 0  # a new home: population defaults, said so
    assert sent_ms <= saved[SAVED_KEY] <= time.time() * 1000  # when it was saved, for the page's "as of"
    assert isinstance(saved["off"], dict)


@pytest.mark.browser
def test_serve_admin_logs_in_and_sees_a_call_button_press_arrive(served: Served, broker: Broker) -> None:
    from playwright.sync_api import expect, sync_playwright

    from eldercare.servers._child import ensure_package

    sys.path.insert(0, str(Path(__file__).resolve().parent / "dashboards"))
    from dash_harness import CHROMIUM_ARGS

    path = ensure_package("/usr/bin/chromium", "chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(locale="zh-CN").new_page()
            page.goto(f"{served.url}/login")
            page.fill("input[name=username]", "root")
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{served.url}/console")
            expect(page.locator("#live")).to_have_class("live ok")
            expect(page.locator(".q-item")).to_have_count(0)
            password = broker.gateway_password(served.site)
            with GatewayPublisher(site=served.site, password=password, port=broker.port) as gw:
                gw.publish(encode_call_button_event(**gw.wire.stamp("btn1"), ts=int(time.time() * 1000), event="press"))
                item = page.locator(".q-item").first
                expect(item).to_be_visible(timeout=20_000)  # published → detected → stored → live on the page
                expect(item).to_contain_text("张桂英")
        finally:
            browser.close()


def test_a_backend_the_broker_refuses_says_why_and_stops_promptly(
    broker: Broker, influxd: Influxd, unique_site: str, unique_db: str, tmp_path: Path
) -> None:
    """A wrong broker password: /readyz said only "error: RuntimeError" and SIGTERM took 60 s and a traceback."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")},
        "ELDERCARE_DATA_DIR": str(tmp_path / "data"),
        "ELDERCARE_MQTT_HOST": broker.host,
        "ELDERCARE_MQTT_PORT": str(broker.backend_port),
        "ELDERCARE_MQTT_USERNAME": broker.backend_user,
        "ELDERCARE_MQTT_PASSWORD": "not-the-backend-password",
        "ELDERCARE_MQTT_CLIENT_ID": f"refused-{unique_site}",
        "ELDERCARE_INFLUX_URL": influxd.url,
        "ELDERCARE_INFLUX_DB": unique_db,
        "ELDERCARE_LINK_SECRET": "serve-test-link-secret-0123456789",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "eldercare.cli", "serve", "--role", "backend", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline, body = time.monotonic() + 30, {}
        while time.monotonic() < deadline and process.poll() is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
                if "not authorized" in body["checks"]["pipeline"]:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert body.get("status") == "not_ready", log.read_text()[-3000:]
        assert body["checks"]["pipeline"].startswith("error: broker"), body
        assert "not authorized" in body["checks"]["pipeline"], body
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()[-3000:]
        assert time.monotonic() - started < 10
        assert "Traceback" not in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
