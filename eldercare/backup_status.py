"""When the last backup succeeded and when one last failed: ``ELDERCARE_DATA_DIR/backup-status.json``.

``eldercare backup`` writes it; the backend's ``/metrics`` reads it
(``eldercare_backup_last_success_timestamp_seconds``, ``eldercare_backup_last_failure_timestamp_seconds``), so a
nightly backup that keeps failing is seen by monitoring, not only by whoever reads the timer's journal.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alerts.store.audit_log import AuditLog

STATUS_FILE = "backup-status.json"


def record_outcome(data_dir: Path, out: Path, *, error: str | None, now_ms: int | None = None) -> None:
    """Note in ``data_dir``'s :data:`STATUS_FILE` that the backup into ``out`` succeeded (``error`` None) or failed.

    The other outcome's last entry is kept. Nothing is written when ``data_dir`` does not exist (no service there
    to report it; creating it here could leave it owned by the wrong user), and a file that cannot be written only
    costs the metric, never the backup.
    """
    if not data_dir.is_dir():
        return
    path = data_dir / STATUS_FILE
    status = read_status(data_dir)
    entry: dict[str, Any] = {"at_ms": now_ms if now_ms is not None else int(time.time() * 1000), "dir": str(out)}
    if error is None:
        status["last_success"] = entry
    else:
        status["last_failure"] = {**entry, "error": error}
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(status, fh, sort_keys=True)
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)


def read_status(data_dir: Path) -> dict[str, Any]:
    """The :data:`STATUS_FILE` in ``data_dir`` (empty when there is none or it cannot be read).

    ``last_success`` / ``last_failure``: ``at_ms`` and ``dir``, and the failure's ``error``; each absent until it
    happened once.
    """
    try:
        status = json.loads((data_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


BACKUP_DONE = "backup.completed"
BACKUP_FAILED = "backup.failed"
"""Audit actions (entity ``backup``) with which a backup also records its outcome in the store: a console on
another host than the backups reads them there (its own data directory has no status file)."""


def last_outcomes(data_dir: Path | None, store: AuditLog | None) -> dict[str, Any]:
    """The last backup success and failure, the newer of the status file's and the store's audit entries.

    :func:`read_status` of ``data_dir`` merged with the store's entries: a host without the status file (a console
    apart from the backups) finds them in the store. What ``/metrics`` and the console's banner both read.
    """
    status = read_status(data_dir) if data_dir is not None else {}
    if store is None:
        return status

    def at(entry: object) -> int:
        when = entry.get("at_ms") if isinstance(entry, dict) else None
        return when if isinstance(when, int) else -1

    for key, action in (("last_success", BACKUP_DONE), ("last_failure", BACKUP_FAILED)):
        entry = store.last_audit(entity="backup", action=action)
        if entry is not None and entry.time_ms > at(status.get(key)):
            status[key] = {"at_ms": entry.time_ms, "dir": entry.detail.get("dir", ""),
                           "error": entry.detail.get("error", "")}  # fmt: skip
    return status
