"""Downstream commands to 4G watches: the backend's commands (help is coming, check-in prompts) as watch frames.

The alert service sends commands to ``ec/v1/{site}/{kind}/{device}/cmd`` through one publisher. A 4G watch speaks
no MQTT, so :class:`WatchCommandRouter` takes the commands addressed to a registered watch and writes them on the
watch's own TCP connection as a text message the watch shows and reads out, and passes every other command on to
the MQTT publisher. The frame is Traccar's ``WatchProtocolEncoder`` ``TYPE_MESSAGE``: ``MESSAGE,`` followed by the
text in UTF-16BE as hex (its test: ``text`` → ``[CS*123456789012345*0018*MESSAGE,0074006500780074]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

import msgspec

from gateway.errors import WatchOffline
from gateway.models import CONTRACT_PREFIX, DeviceKind, MessageType
from gateway.watch.registry import WatchBinding

MAX_MESSAGE_CHARS: Final = 120
"""Longest text sent (watch screens are small; the help-coming text is about 25 characters)."""


class Publisher(Protocol):
    """Where other commands go (:class:`gateway.downlink.CommandPublisher`)."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish one command; raise on failure."""
        ...


class WatchLink(Protocol):
    """The watch server's side of a command (:meth:`gateway.watch.server.WatchServer.send`)."""

    async def send(self, imei: str, content: str) -> None:
        """Write one frame to a connected watch; raise :class:`WatchOffline`."""
        ...


def message_content(text: str) -> str:
    """The ``MESSAGE`` command of a text.

    >>> message_content("text")
    'MESSAGE,0074006500780074'
    >>> message_content("已收到")
    'MESSAGE,5df265365230'
    """
    return "MESSAGE," + text[:MAX_MESSAGE_CHARS].encode("utf-16-be").hex()


class _Command(msgspec.Struct, kw_only=True):
    cmd: str = ""
    text_zh: str = ""
    text: str = ""


class WatchCommandRouter:
    """A command publisher that delivers commands for registered watches over their TCP connection."""

    def __init__(self, *, fallback: Publisher, watches: Mapping[str, WatchBinding]) -> None:
        self.fallback = fallback
        self._imei_of = {(b.site, b.device): imei for imei, b in watches.items()}
        self.server: WatchLink | None = None
        """The running watch server (set when it starts listening); None: every watch counts as not connected."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` to the watch the topic names, else publish it over MQTT; raise on failure."""
        imei = self._watch_of(topic)
        if imei is None:
            await self.fallback.publish(topic, payload)
            return
        command = msgspec.json.decode(payload, type=_Command)
        text = command.text_zh or command.text
        if not text:
            raise ValueError(f"command {command.cmd!r} has no text a watch can show")
        if self.server is None:
            raise WatchOffline(imei, "watch server not running")
        await self.server.send(imei, message_content(text))

    def _watch_of(self, topic: str) -> str | None:
        parts = topic.split("/")
        if len(parts) != 6 or "/".join(parts[:2]) != CONTRACT_PREFIX or parts[5] != MessageType.CMD.value:
            return None
        if parts[3] != DeviceKind.WRISTBAND.value:
            return None
        return self._imei_of.get((parts[2], parts[4]))
