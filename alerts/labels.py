"""The one catalogue of zh/en names for alert types, severities, states, outcomes and device kinds.

Notifications (:mod:`alerts.notify`), the console and phone pages (:mod:`dashboards.i18n`) and the statistics all
name things through :func:`label`, so the message on a worker's phone and the console's queue never disagree.

Python tables rather than gettext catalogues: there are about sixty names, each keyed by an enum member, so a
missing translation is a type-checked gap and a test (not a string lookup at run time) finds it; the console's
other labels already live in :mod:`dashboards.i18n` as dicts with a zh/en parity test, and one system is simpler
than two (no ``.po``/``.mo`` build step for a two-language product).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, Literal, NamedTuple, TypeVar

from alerts.lifecycle import Outcome, State
from detection.models import AlertType, Severity
from gateway.models import KIND_NAMES, DeviceKind

Lang = Literal["zh", "en"]
E = TypeVar("E", bound=StrEnum)


class Label(NamedTuple):
    """One name in both languages."""

    zh: str
    en: str


ALERT_TYPES: Final[Mapping[AlertType, Label]] = {
    AlertType.SOS: Label("SOS 紧急求助", "SOS"),
    AlertType.CALL_BUTTON: Label("一键呼叫求助", "call button"),
    # "Suspected": a wristband's fall detection is a guess until someone has looked.
    AlertType.FALL: Label("疑似跌倒", "fall (suspected)"),
    AlertType.SMOKE: Label("烟雾报警", "smoke alarm"),
    AlertType.GAS: Label("燃气泄漏报警", "gas leak alarm"),
    AlertType.VITALS_CRITICAL: Label("生命体征危急", "critical vital signs"),
    AlertType.APNEA: Label("睡眠呼吸暂停", "sleep apnea"),
    AlertType.NIGHT_BED_EXIT: Label("夜间离床未归", "out of bed at night, not back"),
    AlertType.INACTIVITY: Label("长时间无活动", "no activity for long"),
    AlertType.NOT_UP: Label("早晨未起床", "not up in the morning"),
    # The door contact sees the door open, not that anyone went out.
    AlertType.NIGHT_DOOR: Label("夜间开门", "door opened at night"),
    AlertType.OUT_NOT_BACK: Label("外出未归", "out, not back"),
    AlertType.VITALS_TREND: Label("体征趋势异常", "vital-sign trend"),
    AlertType.DEVICE_OFFLINE: Label("设备离线", "device offline"),
    AlertType.SITE_OFFLINE: Label("家庭网关离线", "home gateway offline"),
    AlertType.LOW_BATTERY: Label("电量低", "low battery"),
    AlertType.TAMPER: Label("设备被拆动", "device tampered with"),
    AlertType.NOT_WORN: Label("手环未佩戴", "wristband not worn"),
    AlertType.DEVICE_FAULT: Label("设备故障", "device fault"),
}

SEVERITIES: Final[Mapping[Severity, Label]] = {
    Severity.CRITICAL: Label("紧急", "Critical"),
    Severity.WARNING: Label("预警", "Warning"),
    Severity.INFO: Label("提示", "Info"),
}

STATES: Final[Mapping[State, Label]] = {
    State.OPEN: Label("待处理", "open"),
    State.ACKNOWLEDGED: Label("已接单", "acknowledged"),
    State.EN_ROUTE: Label("正在赶往", "en route"),
    State.ON_SITE: Label("已到场", "on site"),
    State.RESOLVED: Label("已处置", "resolved"),
    State.CLEARED: Label("已自动恢复", "cleared"),
}

OUTCOMES: Final[Mapping[Outcome, Label]] = {
    Outcome.ELDER_FINE: Label("经核实老人安好", "elder fine (checked)"),
    Outcome.FALSE_ALARM: Label("误报", "false alarm"),
    Outcome.ASSISTED_AT_HOME: Label("已上门协助", "assisted at home"),
    Outcome.SENT_TO_HOSPITAL: Label("已送医", "sent to hospital"),
    Outcome.FAMILY_CONTACTED: Label("已联系家属", "family contacted"),
    Outcome.NO_ONE_HOME: Label("家中无人", "no one at home"),
    Outcome.DEVICE_FIXED: Label("设备已修复", "device fixed"),
    Outcome.OTHER: Label("其他", "other"),
}

DEVICE_KINDS: Final[Mapping[DeviceKind, Label]] = {k: Label(zh, en) for k, (zh, en) in KIND_NAMES.items()}


def label(table: Mapping[E, Label], value: str, lang: str) -> str:
    """The name of ``value`` (an enum member or its string value) in ``lang``; an unknown value names itself.

    >>> label(ALERT_TYPES, "night_door", "zh"), label(SEVERITIES, Severity.WARNING, "en"), label(STATES, "x", "zh")
    ('夜间开门', 'Warning', 'x')
    """
    found = table.get(value)  # type: ignore[call-overload]  # a StrEnum member is found by its string value
    if found is None:
        return str(value)
    return str(found.en if lang == "en" else found.zh)
