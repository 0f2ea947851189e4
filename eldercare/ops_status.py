"""What IT must act on, for the console's administrators: a stale or failed backup, a certificate about to lapse.

The same facts ``/metrics`` serves (eldercare/backup_status.py, eldercare/certs.py), for a deployment without
Prometheus: the console shows them to administrators above the queue.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from alerts.store.audit_log import AuditLog
from dashboards.context import OpsNotice
from eldercare.backup_status import last_outcomes
from eldercare.certs import validity
from eldercare.settings import Settings

BACKUP_STALE_S = 26 * 3600
"""A nightly backup older than this (a day and the timer's spread) has stopped."""


def watched_certificates(tls_dir: Path | None, console_cert: Path | None) -> list[Path]:
    """The certificates whose expiry is watched: every ``*.crt`` of the broker's TLS directory, the console's."""
    files = sorted(tls_dir.glob("*.crt")) if tls_dir is not None and tls_dir.is_dir() else []
    return files + ([console_cert] if console_cert is not None else [])


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def notices(settings: Settings, *, store: AuditLog | None = None, now_s: float | None = None) -> list[OpsNotice]:
    """The backup's and the certificates' notices at ``now_s`` (default: now); empty when all is well.

    The backups' outcomes come from this host's status file and, given the ``store``, from its audit log (a
    console on another host than the backups finds them there); the newer of each counts.
    """
    now = time.time() if now_s is None else now_s
    found: list[OpsNotice] = []
    status = last_outcomes(settings.data_dir, store)
    success = status.get("last_success", {}).get("at_ms")
    failure = status.get("last_failure", {})
    if not isinstance(success, int):
        found.append(OpsNotice("ops.backup_never"))
    elif now - success / 1000 > BACKUP_STALE_S:
        hours = f"{(now - success / 1000) / 3600:.0f}"
        found.append(OpsNotice("ops.backup_stale", {"hours": hours, "when": _utc(success / 1000)}))
    failed_at = failure.get("at_ms")
    if isinstance(failed_at, int) and (not isinstance(success, int) or failed_at > success):
        error = str(failure.get("error", ""))
        found.append(OpsNotice("ops.backup_failed", {"when": _utc(failed_at / 1000), "error": error}))
    files = watched_certificates(settings.backup_tls_dir, settings.console_tls_cert)
    for cert in sorted(validity(files, now_s=now), key=lambda c: c.until_s):
        values = {"file": cert.path, "date": cert.date, "days": f"{max(cert.days_left, 0):.0f}"}
        if cert.expired:
            found.append(OpsNotice("ops.cert_expired", values))
        elif cert.expiring:
            found.append(OpsNotice("ops.cert_expiring", values))
    return found


def notices_source(settings: Settings, store: AuditLog | None = None) -> Callable[[], list[OpsNotice]]:
    """:func:`notices` for the console, read at each administrator's console page.

    A small file, two reads of the audit log through its entity index, and a few certificates.
    """
    return lambda: notices(settings, store=store)
