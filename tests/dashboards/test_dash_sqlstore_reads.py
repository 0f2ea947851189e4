"""The console's reads never queue behind a writer (SQLite file: BEGIN IMMEDIATE is the write lock)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dash_harness import make_store

from alerts.scope import Scope
from detection.models import Alert, AlertType, Severity


def test_console_reads_proceed_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    backend = make_store(tmp_path)
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        now = backend.service.clock()
        alert = backend.raise_alert(
            Alert(site="h1", type=AlertType.SOS, severity=Severity.CRITICAL, time_ms=now, explanation="SOS",
                  explanation_zh="SOS", device="btn1")
        )  # fmt: skip
        version = backend.alerts_version()
        # Another connection (as another thread or process writing) takes the write lock and holds it.
        writer = sqlite3.connect(tmp_path / "store.db", isolation_level=None, timeout=0)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO alert_events (alert_id, time_ms, actor, channel, action, from_state, to_state) "
            "VALUES (?, ?, 'W_G1', 'console', 'note', 'open', 'open')",
            (alert.id, now),
        )

        def console_reads() -> tuple[int, int, int, int]:
            return (
                backend.alerts_version(),
                len(backend.list_alerts(Scope("community", "C01"))),
                len(backend.list_residents(Scope("all"))),
                len(backend.audit_log(limit=10)),
            )

        try:
            # A deadlock guard, not a timing assertion: a read that took the write lock would wait for the
            # writer (busy_timeout 30 s) and never finish while the lock is held.
            seen = pool.submit(console_reads).result(timeout=20)
        finally:
            writer.execute("COMMIT")
            writer.close()
        assert seen[0] == version  # a snapshot: the uncommitted write is not visible
        assert seen[1:3] == (1, 4) and seen[3] > 0
        assert backend.alerts_version() != version  # and it is once committed
    finally:
        pool.shutdown(wait=True)
        backend.store.close()
