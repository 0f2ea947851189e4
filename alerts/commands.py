"""Downstream "help is coming" command sent to the home when someone takes an SOS or call-button alert.

Payload (JSON, topic ``ec/v1/{site}/{kind}/{device}/cmd`` from :func:`gateway.contract.command_topic`)::

    {"cmd": "help_coming", "alert": 42, "ts": 1732420000000,
     "by": "李网格", "text_zh": "已收到您的求助，工作人员李网格正在赶来。",
     "text": "Your call was received; 李网格 is on the way."}

The device plays or shows ``text_zh``; the simulator prints it.
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


def help_coming(*, alert_id: int, time_ms: int, by: str) -> bytes:
    """Encode the command payload.

    >>> help_coming(alert_id=1, time_ms=5, by="李网格")[:35]
    b'{"cmd":"help_coming","alert":1,"ts"'
    """
    return msgspec.json.encode(
        HelpComing(
            alert=alert_id,
            ts=time_ms,
            by=by,
            text_zh=f"已收到您的求助，工作人员{by}正在赶来。",
            text=f"Your call was received; {by} is on the way.",
        )
    )


def help_coming_topics(*, site: str, alert_type: AlertType, device: str | None, devices: dict[str, str]) -> list[str]:
    """Topics to send the command to: the device that raised it, else every call button/wristband of the home.

    ``devices`` maps device id → kind for the site (from the registry).
    """
    if device is not None and device in devices:
        return [command_topic(site, DeviceKind(devices[device]), device)]
    wanted = {DeviceKind.CALL_BUTTON.value, DeviceKind.WRISTBAND.value}
    return [command_topic(site, DeviceKind(kind), dev) for dev, kind in sorted(devices.items()) if kind in wanted]
