"""A worker's outcome of a behavioural alert is a label the detection core learns from (issue 19).

"Elder fine", "false alarm" or "no one home" (the elder was out) mean the elder was fine: the day stays in the
home's baseline and counts as a label. "Assisted at home" or "sent to hospital" confirm a real incident: that day
is kept out of the baseline, so an incident never becomes "normal". Other outcomes (device fixed, family
contacted, other) say nothing about the elder's routine. Life-safety and device alerts are not labels for the
routine.
"""

from __future__ import annotations

from typing import Final, Protocol

from alerts.lifecycle import Outcome
from detection.detectors.base import BEHAVIOURAL

_LABEL: Final[dict[Outcome, bool]] = {
    Outcome.ELDER_FINE: False,
    Outcome.FALSE_ALARM: False,
    Outcome.NO_ONE_HOME: False,
    Outcome.ASSISTED_AT_HOME: True,
    Outcome.SENT_TO_HOSPITAL: True,
}
_BEHAVIOURAL: Final = frozenset(t.value for t in BEHAVIOURAL)
FINE_OUTCOMES: Final[frozenset[Outcome]] = frozenset(o for o, real in _LABEL.items() if not real)
"""Outcomes that say the elder was fine (elder fine, false alarm, no one home): the alert was not needed."""


class OutcomeLabels(Protocol):
    """Where labels go: :meth:`detection.engine.Engine.label_outcome` in the live backend."""

    def label_outcome(self, site: str, time_ms: int, *, real: bool) -> bool:
        """Record that the alert of ``site`` at ``time_ms`` was a real incident (True) or the elder was fine."""
        ...


def label_of(outcome: Outcome, alert_type: str) -> bool | None:
    """True: a confirmed incident; False: the elder was fine; None: no label for the routine.

    >>> label_of(Outcome.FALSE_ALARM, "inactivity"), label_of(Outcome.SENT_TO_HOSPITAL, "not_up")
    (False, True)
    >>> label_of(Outcome.FALSE_ALARM, "sos") is None, label_of(Outcome.DEVICE_FIXED, "inactivity") is None
    (True, True)
    """
    if alert_type not in _BEHAVIOURAL:
        return None
    return _LABEL.get(outcome)


def apply_outcome(
    labels: OutcomeLabels, *, site: str, alert_type: str, raised_ms: int, outcome: Outcome
) -> bool | None:
    """Pass a resolved alert's outcome to the detection core; returns the label given (None: none)."""
    label = label_of(outcome, alert_type)
    if label is not None:
        labels.label_outcome(site, raised_ms, real=label)
    return label
