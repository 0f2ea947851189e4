"""Downstream "help is coming" command sent to the home when someone takes an SOS or call-button alert.

Payload (JSON, topic ``ec/v1/{site}/{kind}/{device}/cmd`` from :func:`gateway.contract.command_topic`)::

    {"cmd": "help_coming", "alert": 42, "ts": 1732420000000,
     "by": "李网格", "text_zh": "已收到您的求助，网格员李网格正在处理，请保持冷静，尽量留在原地。",
     "text": "Your call was received: grid worker 李网格 is handling it. Stay calm and stay where you are."}

Sent twice at most: when someone first takes the alert (it is being handled, by whom: not a promise that anyone is
coming, as the person may be a duty officer at a desk) and when someone sets off (``en_route``: "已出发，正在赶来" /
"on the way"). The device plays or shows ``text_zh``; the simulator prints it.
"""

from __future__ import annotations

from typing import Final, Protocol

import msgspec

from detection.models import AlertType
from gateway.contract import command_topic
from gateway.models import DeviceKind

HELP_COMING_TYPES: Final[frozenset[AlertType]] = frozenset({AlertType.SOS, AlertType.CALL_BUTTON})
"""Alerts whose acknowledgement is announced back to the home."""


class CommandPublisher(Protocol):
    """Publishes a downstream command (QoS 1); gateway/downlink.py provides the aiomqtt implementation."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish ``payload`` on ``topic``; raise on failure."""
        ...


class HelpComing(msgspec.Struct, frozen=True, kw_only=True):
    """The command payload."""

    cmd: str = "help_coming"
    alert: int
    ts: int
    by: str
    text_zh: str
    text: str


ROLE_NAMES: Final[dict[str, tuple[str, str]]] = {
    "grid_worker": ("网格员", "grid worker"),
    "community_duty": ("社区值班员", "community duty officer"),
    "street": ("街道工作人员", "street officer"),
    "district": ("区工作人员", "district officer"),
}
"""How the elder hears who it is, per worker role (registry roles, ``alerts.escalation.Role``)."""


def help_coming(*, alert_id: int, time_ms: int, by: str, role: str = "", on_the_way: bool = False) -> bytes:
    """Encode the command payload: taken (who handles it) or, with ``on_the_way``, set off.

    >>> help_coming(alert_id=1, time_ms=5, by="李网格")[:35]
    b'{"cmd":"help_coming","alert":1,"ts"'
    """
    zh_role, en_role = ROLE_NAMES.get(role, ("工作人员", "staff member"))
    if on_the_way and not by:
        text_zh, text = f"{zh_role}已出发，正在赶来。", f"A {en_role} is on the way."
    elif on_the_way:
        text_zh, text = f"{zh_role}{by}已出发，正在赶来。", f"{en_role.capitalize()} {by} is on the way."
    else:
        text_zh = f"已收到您的求助，{zh_role}{by}正在处理，请保持冷静，尽量留在原地。"
        text = f"Your call was received: {en_role} {by} is handling it. Stay calm and stay where you are."
    return msgspec.json.encode(HelpComing(alert=alert_id, ts=time_ms, by=by, text_zh=text_zh, text=text))


def help_coming_topics(*, site: str, alert_type: AlertType, device: str | None, devices: dict[str, str]) -> list[str]:
    """Topics to send the command to: the device that raised it, else every call button/wristband of the home.

    ``devices`` maps device id → kind for the site (from the registry).
    """
    if device is not None and device in devices:
        return [command_topic(site, DeviceKind(devices[device]), device)]
    wanted = {DeviceKind.CALL_BUTTON.value, DeviceKind.WRISTBAND.value}
    return [command_topic(site, DeviceKind(kind), dev) for dev, kind in sorted(devices.items()) if kind in wanted]
