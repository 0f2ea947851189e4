"""Home-centric fusion: the alerts of one home group into one incident; duplicates merge instead of spamming.

Two incident streams per home: the *person* stream (life-safety and behavioural alerts) and the *device*
stream (offline, battery, tamper, site offline), so a low battery never dilutes a fall. Within a stream an alert
joins the open incident if it arrives within ``window_ms`` of the incident's last alert. Rules:

- the first alert of a type (and device) in an incident notifies; a repeat within ``dup_window_ms`` of the
  previous one merges silently (``duplicate``), e.g. a smoke detector re-sending ``alarm`` every minute;
- two different person conditions in one incident (fall + still out of bed + no motion, night bed exit + not up,
  smoke + elder in bed) raise the incident to critical and notify again (``escalated``);
- a ``clears`` alert closes its condition; the incident closes when nothing is left open;
- device health (offline, battery, tamper, not worn, fault) notifies at most once per device and type in
  ``device_quiet_ms`` (a day): a flapping contact that drops out and back ten times a day pages once; the
  console still lists every alert. Life-safety and behavioural alerts are never held back by this.

Life-safety alerts are never delayed here: fusion only annotates them.
"""

from __future__ import annotations

from typing import Final

import msgspec

from detection.detectors.base import BEHAVIOURAL
from detection.models import LIFE_SAFETY_TYPES, Alert, AlertType, Severity

PERSON_TYPES: Final = LIFE_SAFETY_TYPES | BEHAVIOURAL | {AlertType.APNEA}
DEVICE_HEALTH: Final = frozenset(
    {AlertType.DEVICE_OFFLINE, AlertType.LOW_BATTERY, AlertType.TAMPER, AlertType.NOT_WORN, AlertType.DEVICE_FAULT}
)
_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class IncidentUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """What one alert did to its home's incident."""

    incident: str
    action: str
    """``opened``, ``merged``, ``escalated``, ``duplicate`` or ``cleared``."""
    severity: Severity
    """Incident severity after this alert."""
    notify: bool
    """True when someone should be told (new incident, new condition, escalation)."""
    types: tuple[str, ...]
    alert: Alert


class _Incident:
    __slots__ = ("id", "keys", "keys_ms", "last_ms", "open", "severity", "types")

    def __init__(self, incident_id: str, alert: Alert) -> None:
        self.id = incident_id
        self.last_ms = alert.time_ms
        self.severity = alert.severity
        self.types: list[str] = []
        self.keys: set[tuple[str, str | None]] = set()
        self.keys_ms: dict[tuple[str, str | None], int] = {}
        self.open: set[tuple[str, str | None]] = set()


class Fusion:
    """Groups a stream of alerts (in event-time order) into incidents per home."""

    def __init__(
        self, *, window_ms: int = 2 * 3_600_000, dup_window_ms: int = 30 * 60_000, device_quiet_ms: int = 86_400_000
    ) -> None:
        self.window_ms = window_ms
        self.dup_window_ms = dup_window_ms
        self.device_quiet_ms = device_quiet_ms
        self._open: dict[tuple[str, str], _Incident] = {}
        self._device_notified: dict[tuple[str, str, str | None], int] = {}
        self._n = 0

    def add(self, alert: Alert) -> IncidentUpdate:
        """Place one alert into its incident and say whether to notify."""
        update = self._add(alert)
        if update.notify and alert.type in DEVICE_HEALTH:
            key = (alert.site, alert.type.value, alert.device)
            last = self._device_notified.get(key)
            if last is not None and 0 <= alert.time_ms - last < self.device_quiet_ms:
                return msgspec.structs.replace(update, notify=False, action="duplicate")
            self._device_notified[key] = alert.time_ms
        return update

    def _add(self, alert: Alert) -> IncidentUpdate:
        stream = "person" if alert.type in PERSON_TYPES else "device"
        skey = (alert.site, stream)
        key = (alert.type.value, alert.device)
        inc = self._open.get(skey)
        if inc is not None and alert.time_ms - inc.last_ms > self.window_ms:
            del self._open[skey]
            inc = None
        if alert.clears:
            if inc is None:
                return self._update("", "cleared", alert.severity, False, (), alert)
            inc.open.discard(key)
            inc.open = {k for k in inc.open if k[0] != alert.type.value or alert.device is not None}
            if not inc.open:
                del self._open[skey]
            return self._update(inc.id, "cleared", inc.severity, False, tuple(inc.types), alert)
        if inc is None:
            self._n += 1
            inc = _Incident(f"{alert.site}#{self._n}", alert)
            self._open[skey] = inc
            inc.types.append(alert.type.value)
            inc.keys.add(key)
            inc.keys_ms[key] = alert.time_ms
            inc.open.add(key)
            return self._update(inc.id, "opened", inc.severity, True, tuple(inc.types), alert)
        followup = bool(alert.evidence.get("followup"))
        seen = inc.keys_ms.get(key)
        inc.last_ms = max(inc.last_ms, alert.time_ms)
        inc.keys_ms[key] = alert.time_ms
        if seen is not None and not followup and alert.time_ms - seen <= self.dup_window_ms:
            return self._update(inc.id, "duplicate", inc.severity, False, tuple(inc.types), alert)
        inc.keys.add(key)
        inc.open.add(key)
        if alert.type.value not in inc.types:
            inc.types.append(alert.type.value)
        severity = alert.severity if _RANK[alert.severity] > _RANK[inc.severity] else inc.severity
        person_conditions = {t for t in inc.types if AlertType(t) in PERSON_TYPES}
        if stream == "person" and len(person_conditions) >= 2:
            severity = Severity.CRITICAL
        action = "escalated" if _RANK[severity] > _RANK[inc.severity] else "merged"
        inc.severity = severity
        return self._update(inc.id, action, severity, True, tuple(inc.types), alert)

    @staticmethod
    def _update(
        incident: str, action: str, severity: Severity, notify: bool, types: tuple[str, ...], alert: Alert
    ) -> IncidentUpdate:
        return IncidentUpdate(
            incident=incident, action=action, severity=severity, notify=notify, types=types, alert=alert
        )
