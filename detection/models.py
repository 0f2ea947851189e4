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
    GAS = "gas"
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
        AlertType.GAS,
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


CHECKIN_TYPES: Final[frozenset[AlertType]] = frozenset(
    {AlertType.INACTIVITY, AlertType.NOT_UP, AlertType.NIGHT_BED_EXIT}
)
"""Behavioural alerts that first ask the elder (the elder is at home and can answer); never a life-safety alert.
A night door or an outing is not asked: the elder is not at home to hear the prompt."""


class CheckIn(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a check-in: the prompt sent to the home, its answer, or the page after no answer.

    ``what`` is ``prompt`` (ask the elder through the home's devices: downlink ``cmd: checkin``), ``answered``
    (the elder showed activity or pressed "I'm fine" within the window: the alert closes as "elder fine" and is a
    learning label) or ``paged`` (no answer within the window, or the answer was "help": the held alerts page).
    """

    site: str
    time_ms: int
    what: str
    types: tuple[str, ...]
    prompt_ms: int
    detail: str = ""
