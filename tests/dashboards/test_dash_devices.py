"""Gateway provisioning from the console creates a working MQTT account and ACL on a real mosquitto."""

from __future__ import annotations

from typing import Any

import pytest
from dash_helpers import Backend, login
from fastapi.testclient import TestClient

from dashboards.app import create_app
from eldercare.settings import Settings


def test_provisioning_unconfigured_and_scoped(client: TestClient) -> None:
    csrf = login(client, "W_C1")
    h = {"X-CSRF-Token": csrf}
    assert client.post("/api/devices/gateways/h4/provision", headers=h).status_code == 404  # other community
    refused = client.post("/api/devices/gateways/h1/provision", headers=h)
    assert refused.status_code == 503 and "eldercare broker provision" in refused.json()["detail"]
    csrf = login(client, "W_G1")
    assert client.post("/api/devices/gateways/h1/provision", headers={"X-CSRF-Token": csrf}).status_code == 403


@pytest.mark.integration
def test_provisioned_gateway_can_connect(broker: Any, settings: Settings, backend: Backend) -> None:
    app = create_app(
        settings, backend=backend, gateway_secret=broker.secret, provisioner=lambda s: broker.provision([s])
    )
    with TestClient(app) as client:
        csrf = login(client, "W_C1")
        r = client.post("/api/devices/gateways/h2/provision", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        creds = r.json()
    assert creds["username"] == "h2" and creds["topic_prefix"] == "ec/v1/h2/"
    assert broker.can_connect("h2", creds["password"])
    assert not broker.can_connect("h2", "wrong-password")
    assert any(e.action == "gateway.provisioned" and e.entity_id == "h2" for e in backend.audit_log())


@pytest.mark.integration
def test_provision_from_resident_page(broker: Any, settings: Settings, backend: Backend) -> None:
    app = create_app(
        settings, backend=backend, gateway_secret=broker.secret, provisioner=lambda s: broker.provision([s])
    )
    with TestClient(app) as client:
        csrf = login(client, "W_C1")
        assert 'hx-post="/registry/gateways/h1"' in client.get("/residents/R1").text
        r = client.post("/registry/gateways/h1", data={"csrf": csrf})
        assert r.status_code == 200
        password = r.text.split('id="gw-password">')[1].split("<")[0]
        assert broker.can_connect("h1", password)
        assert client.post("/registry/gateways/h1", data={"csrf": "bad"}).status_code == 403
        assert client.post("/registry/gateways/h4", data={"csrf": csrf}).status_code == 404
