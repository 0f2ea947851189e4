"""``eldercare admin create``: the first administrator of a new deployment (password never on the command line)."""

from __future__ import annotations

from pathlib import Path

from alerts.lifecycle import Channel
from alerts.store.repository import AlertStore
from dashboards.security import hash_password
from eldercare.backend import wall_ms
from eldercare.privacy import operator

MIN_PASSWORD = 10
"""Same floor as passwords set in the console."""


class AdminError(ValueError):
    """The administrator could not be created; the message says why."""


def read_password_file(path: Path) -> str:
    """The first line of a file (e.g. a systemd credential or a 0600 file), without its newline."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AdminError(f"cannot read the password file {path}: {exc.strerror}") from None
    password = text.splitlines()[0] if text else ""
    return password


def create_admin(store: AlertStore, *, worker_id: str, name: str, phone: str, password: str) -> None:
    """Add an active administrator (scope: everything) with an argon2id password hash; audited as the operator.

    Raises :class:`AdminError` for a short password, a taken id or phone, or an invalid id.
    """
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"the password must have at least {MIN_PASSWORD} characters / 密码至少 {MIN_PASSWORD} 位")
    try:
        store.create_worker(
            worker_id=worker_id, name=name, role="admin", scope="", phone=phone, password_hash=hash_password(password),
            actor=operator(), channel=Channel.SYSTEM, now_ms=wall_ms(),
        )  # fmt: skip
    except ValueError as exc:  # RecordConflict / InvalidRecord
        raise AdminError(str(exc)) from None
