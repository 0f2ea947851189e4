"""The audit actor of a hand-run command names a person, not ``cli:0`` nor the service user ``runuser`` switched to.

``operator(loginuid=...)`` reads the kernel's audit login uid from the given file; the tests hand it a file of their
own, so they hold on a developer's machine (a login session) as in CI (no session: 4294967295).
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eldercare.privacy import operator

UNSET = "4294967295"


def _loginuid(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loginuid"
    path.write_text(text)  # the kernel's file has no newline; int() takes either
    return path


def _someone_else() -> pwd.struct_passwd:
    """A user of this machine's password database who is not the one running the tests (``runuser``'s caller)."""
    return next(p for p in pwd.getpwall() if p.pw_uid != os.geteuid())


def _myself() -> str:
    return f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"


def test_the_actor_is_the_login_uids_user_after_runuser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/operations.md's `eldercare` function runs `runuser -u eldercare`: no SUDO_USER, the service user's uid."""
    monkeypatch.delenv("SUDO_USER", raising=False)
    person = _someone_else()
    assert operator(loginuid=_loginuid(tmp_path, str(person.pw_uid))) == f"cli:{person.pw_name}"


def test_the_login_uid_wins_over_the_sudo_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`su bob` then `sudo -u eldercare …`: SUDO_USER says bob, the login uid still says who logged in."""
    person = _someone_else()
    monkeypatch.setenv("SUDO_USER", "bob")
    assert operator(loginuid=_loginuid(tmp_path, str(person.pw_uid))) == f"cli:{person.pw_name}"


@pytest.mark.parametrize("text", [UNSET, "", "not a number"])
def test_without_a_login_uid_the_sudo_caller_then_the_effective_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """A service, a boot script or a container has no login session (4294967295): SUDO_USER, then this process."""
    loginuid = _loginuid(tmp_path, text)
    monkeypatch.setenv("SUDO_USER", "alice")
    assert operator(loginuid=loginuid) == "cli:alice"
    monkeypatch.delenv("SUDO_USER")
    assert operator(loginuid=loginuid) == _myself()


def test_a_missing_login_uid_file_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without audit support has no /proc/self/loginuid."""
    monkeypatch.delenv("SUDO_USER", raising=False)
    assert operator(loginuid=tmp_path / "absent") == _myself()


def test_a_login_uid_without_a_user_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container inherits the host's login uid, which its own password database may not know."""
    unknown = next(uid for uid in range(60_001, 4_000_000_000, 7919) if uid not in {p.pw_uid for p in pwd.getpwall()})
    monkeypatch.setenv("SUDO_USER", "alice")
    assert operator(loginuid=_loginuid(tmp_path, str(unknown))) == "cli:alice"


def test_a_user_variable_does_not_name_someone_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The name comes from the password database, not ``$USER``: a root shell may not set it (it was ``cli:0``)."""
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert operator(loginuid=_loginuid(tmp_path, UNSET)) == _myself()
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    assert operator(loginuid=_loginuid(tmp_path, UNSET)) == _myself()


def test_the_real_login_uid_of_this_machine_names_someone() -> None:
    """The default source (/proc/self/loginuid) works here, whatever the session: a non-empty user name."""
    actor = operator()
    assert actor.startswith("cli:") and actor.removeprefix("cli:").strip(), actor


def test_admin_create_is_audited_with_the_operators_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts.store.repository import AlertStore
    from eldercare.admin import create_admin

    monkeypatch.setenv("SUDO_USER", "alice")
    store = AlertStore(url=f"sqlite:///{tmp_path / 'store.db'}")
    try:
        create_admin(store, worker_id="admin", name="管理员", phone="13800000000", password="long enough pw")
        actors = {e.actor for e in store.audit_entries()}
    finally:
        store.close()
    assert actors == {operator()}, actors


def test_db_import_registry_is_audited_with_the_operators_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hand-run import was recorded as actor ``system`` on channel ``api``, as if the backend had done it."""
    from support.backend import registry_for

    from alerts.audit import AuditAction
    from alerts.store.repository import AlertStore
    from eldercare.cli import app

    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", db)
    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUDO_USER", "alice")
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(registry_for("h0001")))
    result = CliRunner().invoke(app, ["db", "import-registry", str(registry)])
    assert result.exit_code == 0, result.output
    store = AlertStore(url=db)
    try:
        imports = [(e.actor, e.channel) for e in store.audit_entries() if e.action == AuditAction.REGISTRY_IMPORTED]
    finally:
        store.close()
    assert imports == [(operator(), "system")], imports
