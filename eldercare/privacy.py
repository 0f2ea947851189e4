"""``eldercare privacy export|erase``: data-subject requests (PIPL) across the store and InfluxDB."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path
from typing import Any, Final

from alerts.store.subject_requests import Erasure, erase_resident, export_resident
from eldercare.backend import wall_ms
from eldercare.production import open_store
from eldercare.settings import Settings, influx_client

_SITE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


LOGINUID: Final = Path("/proc/self/loginuid")
"""The kernel's audit login uid: set once at login (pam_loginuid), inherited unchanged through su, sudo and runuser."""

_NO_LOGIN: Final = 4294967295
"""``(uid_t)-1`` in the login uid file: no login session (a service, a boot script, most containers)."""


def operator(*, loginuid: Path = LOGINUID) -> str:
    """The audit actor of a command run by an operator: ``cli:<user name>`` of the person who logged in.

    The operators' ``eldercare`` shell function (docs/operations.md) runs ``runuser -u eldercare``, which sets no
    ``SUDO_USER``: the effective user alone named the service user. So the first source is the login uid, then
    sudo's caller, then the effective user. Names come from the password database, not ``$USER`` (a root shell may
    not set it: the actor was ``cli:0``); a login uid without an entry (a container's view of the host's user) is
    skipped rather than recorded as a bare number.
    """
    name = _login_name(loginuid) or os.environ.get("SUDO_USER")
    if name:
        return f"cli:{name}"
    uid = os.geteuid()
    try:
        return f"cli:{pwd.getpwuid(uid).pw_name}"
    except KeyError:  # a uid without an entry (a container's arbitrary user)
        return f"cli:{uid}"


def _login_name(loginuid: Path) -> str | None:
    """The user name of the login uid in ``loginuid``, or None when unset, unreadable or unknown here."""
    try:
        uid = int(loginuid.read_text(encoding="ascii"))
    except (OSError, ValueError):  # a kernel without audit support has no such file
        return None
    if uid == _NO_LOGIN:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


async def drop_site_telemetry(settings: Settings, site: str) -> None:
    """Delete every series of one home from InfluxDB (all measurements, every retention policy)."""
    if not _SITE.fullmatch(site):
        raise ValueError(f"not a site id: {site!r}")  # the id is pasted into InfluxQL: only safe characters
    async with influx_client(settings) as client:
        await client.execute(f"DROP SERIES WHERE \"site\" = '{site}'")


async def export(settings: Settings, resident_id: str) -> dict[str, Any]:
    """Everything stored about a resident (store rows; telemetry summarised per measurement)."""
    store = open_store(settings)
    try:
        doc = export_resident(store, resident_id, actor=operator(), now_ms=wall_ms())
    finally:
        store.close()
    site = doc["home"]["site"]
    async with influx_client(settings) as client:
        results = await client.query(
            'SELECT count(*) FROM /.*/ WHERE "site" = $site', params={"site": site}, db=settings.influx_db
        )
    doc["telemetry"] = {
        "note": "raw readings of the home's devices are in InfluxDB; counts per measurement",
        "points": {series.name: series.rows()[0] for r in results for series in r.series if series.values},
    }
    return doc


async def erase(settings: Settings, resident_id: str, *, telemetry: bool = True) -> Erasure:
    """Anonymise the resident in the store; drop the home's telemetry when nobody else lives there."""
    store = open_store(settings)
    try:
        result = erase_resident(store, resident_id, actor=operator(), now_ms=wall_ms())
        if telemetry and result.site_emptied:
            await drop_site_telemetry(settings, result.site)
            store.audit(
                now_ms=wall_ms(), actor=operator(), channel="system", action="privacy.telemetry_dropped",
                entity="site", entity_id=result.site,
            )  # fmt: skip
    finally:
        store.close()
    return result
