"""Downstream commands to homes (e.g. "help is coming" to a call button) over aiomqtt.

The only module that imports aiomqtt. The downstream path is low-rate, so one connection is opened
lazily, shared by all callers (publishes are serialised), and re-opened with backoff when it breaks,
following aiomqtt's documented reconnect loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from types import TracebackType
from typing import Final

import aiomqtt

from gateway.errors import PublishError
from gateway.models import CONTRACT_PREFIX, MessageType
from gateway.retry import Backoff, retry

_LOG: Final = logging.getLogger(__name__)


def is_command_topic(topic: str) -> bool:
    """True for ``ec/v1/{site}/{kind}/{device}/cmd``, the only topics the backend may write.

    >>> is_command_topic("ec/v1/h1/call_button/btn1/cmd"), is_command_topic("ec/v1/h1/door/d1/event")
    (True, False)
    """
    parts = topic.split("/")
    return (
        len(parts) == 6
        and f"{parts[0]}/{parts[1]}" == CONTRACT_PREFIX
        and parts[5] == MessageType.CMD.value
        and all(parts[2:5])
        and not any(c in topic for c in "+#")
    )


class CommandPublisher:
    """Publishes commands at QoS 1 and waits for the broker's acknowledgement, reconnecting as needed."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 1883,
        username: str,
        password: str,
        client_id: str | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        retry_min_s: float = 0.5,
        retry_max_s: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.host = host
        self.port = port
        self.client_id = client_id or f"eldercare-cmd-{secrets.token_hex(4)}"
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self._username = username
        self._password = password
        self._lock = asyncio.Lock()
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            client = aiomqtt.Client(
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                identifier=self.client_id,
                protocol=aiomqtt.ProtocolVersion.V5,
                timeout=self.timeout_s,
            )
            stack = contextlib.AsyncExitStack()
            await stack.enter_async_context(client)
            self._stack, self._client = stack, client
        return self._client

    async def _drop(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await stack.aclose()

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Publish one command; raise :class:`PublishError` if every attempt failed.

        Raises:
            ValueError: if ``topic`` is not a command topic.
            PublishError: if the broker could not be reached or did not acknowledge in time.
        """
        if not is_command_topic(topic):
            raise ValueError(f"not a command topic: {topic!r}")

        async def attempt() -> None:
            try:
                client = await self._connected()
                await client.publish(topic, payload, qos=qos)
            except aiomqtt.MqttError:
                await self._drop()
                raise

        def failed(n: int, exc: Exception, _delay: float) -> None:
            _LOG.warning("Command publish attempt %d to %r failed: %s", n, topic, str(exc) or type(exc).__name__)

        async with self._lock:
            try:
                await retry(
                    attempt,
                    backoff=Backoff(first_s=self.retry_min_s, max_s=self.retry_max_s),
                    retry_on=aiomqtt.MqttError,
                    max_attempts=self.max_attempts,
                    on_failure=failed,
                )
            except aiomqtt.MqttError as exc:
                raise PublishError(topic, self.max_attempts, str(exc) or type(exc).__name__) from None

    async def close(self) -> None:
        """Disconnect."""
        async with self._lock:
            await self._drop()

    async def __aenter__(self) -> CommandPublisher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
