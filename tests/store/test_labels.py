"""The one zh/en catalogue of names (alerts.labels) covers every alert type, severity, state, outcome and kind."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

import pytest

from alerts.labels import ALERT_TYPES, DEVICE_KINDS, OUTCOMES, SEVERITIES, STATES, Label, label
from alerts.lifecycle import Outcome, State
from detection.models import AlertType, Severity
from gateway.models import DeviceKind

CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        (ALERT_TYPES, AlertType),
        (SEVERITIES, Severity),
        (STATES, State),
        (OUTCOMES, Outcome),
        (DEVICE_KINDS, DeviceKind),
    ],
)
def test_every_member_has_a_chinese_and_an_english_name(table: Mapping[StrEnum, Label], enum: type[StrEnum]) -> None:
    assert set(table) == set(enum)
    assert [m for m, name in table.items() if not CJK.search(name.zh) or CJK.search(name.en)] == []
    assert len({name.zh for name in table.values()}) == len(table)  # no two members share a name


def test_lookup_by_member_or_value_and_unknown_values() -> None:
    assert label(ALERT_TYPES, AlertType.NOT_UP, "zh") == label(ALERT_TYPES, "not_up", "zh") == "早晨未起床"
    assert label(OUTCOMES, "false_alarm", "en") == "false alarm"
    assert label(DEVICE_KINDS, "robot", "zh") == "robot"
