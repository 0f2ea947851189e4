"""What IT must act on, on the console of its administrators: a stale or failed backup, a certificate lapsing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from dash_harness import TestStoreBackend
from dash_helpers import login
from fastapi.testclient import TestClient

from dashboards.app import create_app
from eldercare.backup_status import record_outcome
from eldercare.certs import issue, make_ca
from eldercare.ops_status import notices_source
from eldercare.settings import Settings


def _banner(client: TestClient, lang: str = "zh") -> str | None:
    page = client.get("/console", params={"lang": lang}).text
    m = re.search(r'id="ops-banner">(.*?)</div>', page, re.S)
    return m.group(1) if m else None


def test_administrators_see_a_stopped_backup_and_a_lapsing_certificate_and_no_one_else_does(
    settings: Settings, backend: TestStoreBackend, tmp_path: Path
) -> None:
    """A small deployment has no Prometheus to read /metrics: a nightly backup that stopped or failed, or a broker
    certificate about to lapse (every gateway cut off at once), was seen by nobody. The console tells its
    administrators, from the same files as /metrics."""
    tls = tmp_path / "tls"
    make_ca(tls)  # ten years
    issue(tls, "server", hosts=["127.0.0.1"], days=3)  # renewed too late
    app = create_app(settings, backend=backend,
                     operations=notices_source(settings.model_copy(update={"backup_tls_dir": tls})))  # fmt: skip
    with TestClient(app, base_url="http://testserver") as client:
        login(client, "admin")
        banner = _banner(client)
        assert banner is not None and "尚无成功的备份记录" in banner  # never backed up
        now_ms = int(time.time() * 1000)
        record_outcome(settings.data_dir, tmp_path / "b1", error=None, now_ms=now_ms - 50 * 3600 * 1000)
        record_outcome(settings.data_dir, tmp_path / "b2", now_ms=now_ms - 3600 * 1000,
                       error="InfluxDB's backup port cannot be reached")  # fmt: skip
        banner = _banner(client)
        assert banner is not None
        assert "最近一次成功备份在 50 小时前" in banner and "的备份失败：InfluxDB&#39;s backup port" in banner
        assert f"证书 {tls / 'server.crt'} 将于" in banner and "剩 3 天" in banner
        assert "ca.crt" not in banner  # years left: nothing to do
        en = _banner(client, "en")
        assert en is not None and "The last successful backup was 50 h ago" in en and "(3 days left)" in en
    with TestClient(app, base_url="http://testserver") as client:
        login(client, "W_C1")  # a duty officer cannot act on backups or certificates
        assert _banner(client) is None
    record_outcome(settings.data_dir, tmp_path / "b3", error=None)  # the timer runs again
    issue(tls, "server", hosts=["127.0.0.1"])  # renewed: 825 days
    with TestClient(app, base_url="http://testserver") as client:
        login(client, "admin")
        assert _banner(client) is None


def test_a_console_on_another_host_than_the_backups_reads_their_outcome_from_the_store(
    settings: Settings, backend: TestStoreBackend, tmp_path: Path
) -> None:
    """The banner read only the status file of its own host, so a console host apart from the backend's (where the
    nightly backup runs) said "no backup" for ever. Each backup now records its outcome in the store's audit log
    too. Here the backups run for real on "the backend host" (another data directory, the same store)."""
    from eldercare.backup import BackupError, backup

    backend_host = settings.model_copy(update={"data_dir": tmp_path / "backend-host",
                                               "database_url": backend.store.url})  # fmt: skip
    backend_host.data_dir.mkdir()
    app = create_app(settings, backend=backend, operations=notices_source(settings, backend.store))
    with TestClient(app, base_url="http://testserver") as client:
        login(client, "admin")
        banner = _banner(client)
        assert banner is not None and "尚无成功的备份记录" in banner
        backup(backend_host, tmp_path / "nightly", influx=False)
        assert _banner(client) is None  # this host has no status file: the store said it
        taken = tmp_path / "taken"
        taken.mkdir()
        (taken / "x").write_text("in the way")
        with pytest.raises(BackupError):
            backup(backend_host, taken, influx=False)  # a directory in the way: refused
        banner = _banner(client, "en")
        assert banner is not None and "failed:" in banner and "is not empty" in banner, banner
    assert not (settings.data_dir / "backup-status.json").exists()  # nothing came from this host's file
