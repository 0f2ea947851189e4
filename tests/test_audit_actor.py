"""The audit actor of a hand-run command names a person: ``cli:0`` said nothing when ``$USER`` was unset (root)."""

from __future__ import annotations

import os
import pwd

import pytest

from eldercare.privacy import operator


def test_the_actor_is_the_login_name_without_user_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME", "SUDO_USER"):
        monkeypatch.delenv(name, raising=False)
    assert operator() == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


def test_the_actor_is_the_sudo_caller_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "root")
    monkeypatch.setenv("SUDO_USER", "alice")
    assert operator() == "cli:alice"


def test_a_user_variable_does_not_name_someone_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert operator() == f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


def test_admin_create_is_audited_with_the_operators_name(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from alerts.store.repository import AlertStore
    from eldercare.admin import create_admin

    monkeypatch.setenv("SUDO_USER", "alice")
    store = AlertStore(url=f"sqlite:///{Path(tmp_path) / 'store.db'}")
    try:
        create_admin(store, worker_id="admin", name="管理员", phone="13800000000", password="long enough pw")
        actors = {e.actor for e in store.audit_entries()}
    finally:
        store.close()
    assert actors == {"cli:alice"}, actors
