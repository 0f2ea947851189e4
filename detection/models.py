"""Alert domain types shared by the detectors, the alert store and the dashboards."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec


class Severity(StrEnum):
    """How urgent an alert is; decides escalation policy and notification channel."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertType(StrEnum):
    """Every alert the detection core can raise."""

    # life-safety: fire on the first message, never batched, muted or deduplicated away
    SOS = "sos"
    CALL_BUTTON = "call_button"
    FALL = "fall"
    SMOKE = "smoke"
    VITALS_CRITICAL = "vitals_critical"
    APNEA = "apnea"
    # behavioural, against the elder's own learned routine
    NIGHT_BED_EXIT = "night_bed_exit"
    INACTIVITY = "inactivity"
    NOT_UP = "not_up"
    NIGHT_DOOR = "night_door"
    OUT_NOT_BACK = "out_not_back"
    VITALS_TREND = "vitals_trend"
    # device health
    DEVICE_OFFLINE = "device_offline"
    SITE_OFFLINE = "site_offline"
    LOW_BATTERY = "low_battery"
    TAMPER = "tamper"
    NOT_WORN = "not_worn"
    DEVICE_FAULT = "device_fault"


LIFE_SAFETY_TYPES: Final[frozenset[AlertType]] = frozenset(
    {
        AlertType.SOS,
        AlertType.CALL_BUTTON,
        AlertType.FALL,
        AlertType.SMOKE,
        AlertType.VITALS_CRITICAL,
    }
)
"""Never muted, delayed, batched into digests, or merged away."""


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A condition the detection core raised for one home at one event time.

    ``explanation`` (English) and ``explanation_zh`` (Chinese) are complete sentences with the
    numbers behind the decision; ``evidence`` holds those numbers machine-readably.
    """

    site: str
    type: AlertType
    severity: Severity
    time_ms: int
    """Event time at which the condition was detected."""
    explanation: str
    explanation_zh: str
    device: str | None = None
    evidence: dict[str, float | int | str | bool] = msgspec.field(default_factory=dict)
    clears: bool = False
    """True when this message reports that the condition has ended (e.g. device back online)."""

    @property
    def is_life_safety(self) -> bool:
        """Life-safety alerts bypass every quiet hour, digest and batching path."""
        return self.type in LIFE_SAFETY_TYPES
