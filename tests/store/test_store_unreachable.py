"""A PostgreSQL host that accepts the connection and never answers (a hung server, a half-open firewall) must not
hold a process for good: opening the store fails in one line after the connect timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import alerts.store.urls
import eldercare.backup
from alerts.store.errors import StoreUnavailable
from alerts.store.repository import AlertStore


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake while nobody ever reads or answers (backlog, never accepted)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _outcome(action: Callable[[], object], what: str) -> BaseException | None:
    """Run ``action`` in a thread; the error it raised, or None. Fails the test if it still waits after 60 s."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert outcome, f"{what} on a server that never answers still waits after 60 s (no connect timeout)"
    return outcome[0]


def _open(url: str) -> BaseException | None:
    return _outcome(lambda: AlertStore(url=url).close(), "opening a store")


def test_a_server_that_never_answers_is_one_line_after_the_default_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts.store.urls, "CONNECT_TIMEOUT_S", 1)  # the default (10 s), shortened for the test
    error = _open(f"postgresql+psycopg://eldercare:hunter2-secret@127.0.0.1:{silent_server}/eldercare")
    assert isinstance(error, StoreUnavailable), error
    assert "eldercare:***@127.0.0.1" in str(error) and "hunter2-secret" not in str(error)
    assert "timeout" in error.reason.lower(), error.reason


def test_a_connect_timeout_in_the_url_is_kept(silent_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts.store.urls, "CONNECT_TIMEOUT_S", 3600)  # would outlast the test's 60 s
    error = _open(f"postgresql+psycopg://eldercare@127.0.0.1:{silent_server}/eldercare?connect_timeout=1")
    assert isinstance(error, StoreUnavailable) and "timeout" in error.reason.lower(), error


def test_pg_dump_of_a_server_that_never_answers_ends_with_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The backup's own tools get the same timeout (``PGCONNECT_TIMEOUT``); without it pg_dump waited for good."""
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setattr(eldercare.backup, "CONNECT_TIMEOUT_S", 1)
    url = f"postgresql+psycopg://eldercare:hunter2-secret@127.0.0.1:{silent_server}/eldercare"
    error = _outcome(lambda: eldercare.backup.pg_dump(url, tmp_path / "store.dump"), "pg_dump")
    assert isinstance(error, eldercare.backup.BackupError) and "timeout" in str(error).lower(), error
    assert "hunter2-secret" not in str(error)
