"""Check-ins before a page, live: send each prompt to the home as the downlink ``cmd: checkin``, record every step.

The detection core holds a behavioural alert and asks the elder first (``detection/detectors/checkin.py``); it only
appends :class:`~detection.models.CheckIn` steps to :attr:`detection.engine.Engine.checkins`. The backend calls
:meth:`CheckInRelay.drain` after each batch and each timer tick; the relay takes the steps off the engine's list at
once (on the loop, no I/O) and, in a task of its own, records them (:class:`alerts.store.checkins.CheckInStore`) and
publishes every fresh ``prompt`` (docs/contract.md)::

    ec/v1/h0001/call_button/btn1/cmd   {"cmd": "checkin", "prompt": "h0001-1767225600000", "window_s": 300,
                                        "ts": 1767225600000, "text_zh": "您好，您还好吗？…", "text": "…"}

to every call button and wristband of the home. Nothing here touches a life-safety reading or alert: they never go
through the check-in, and the relay's work runs beside them, never in front of them. A prompt whose window has
already passed (replayed after a restart) is recorded, not sent; one already recorded was sent before the restart
and is not sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol

import msgspec

from alerts.commands import CommandPublisher
from alerts.store.checkins import CheckInStep, CheckInStore, prompt_id
from alerts.store.repository import AlertStore
from detection.models import CheckIn
from gateway.contract import command_topic
from gateway.models import DeviceKind

_LOG: Final = logging.getLogger(__name__)
PROMPT_KINDS: Final = frozenset({DeviceKind.CALL_BUTTON.value, DeviceKind.WRISTBAND.value})
"""Devices that can ask the elder (vibrate / speak) and take the answer (the button's ``cancel`` or ``press``)."""
TEXT_ZH: Final = "您好，您还好吗？如果您没事，请按一下“取消”键；需要帮助请按呼叫键。"
TEXT_EN: Final = "Hello, are you all right? Press cancel if you are fine, or the call button for help."


class CheckInSource(Protocol):
    """What the relay reads from the detection engine."""

    @property
    def checkins(self) -> list[CheckIn]:
        """Steps so far (drained: the relay clears the list)."""
        ...

    @property
    def config(self) -> _WindowConfig:
        """The engine's thresholds (``checkin_window_s``)."""
        ...


class _WindowConfig(Protocol):
    @property
    def checkin_window_s(self) -> int: ...


class CheckInCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The downlink payload."""

    cmd: str = "checkin"
    prompt: str
    window_s: int
    ts: int
    text_zh: str = TEXT_ZH
    text: str = TEXT_EN


def checkin_command(*, site: str, prompt_ms: int, window_s: int) -> bytes:
    """Encode the ``cmd: checkin`` payload.

    >>> checkin_command(site="h1", prompt_ms=5, window_s=300)[:55]
    b'{"cmd":"checkin","prompt":"h1-5","window_s":300,"ts":5,'
    """
    return msgspec.json.encode(CheckInCommand(prompt=prompt_id(site, prompt_ms), window_s=window_s, ts=prompt_ms))


def checkin_topics(site: str, devices: dict[str, str]) -> list[str]:
    """Command topics of the home's call buttons and wristbands (``devices``: device id → kind).

    >>> checkin_topics("h1", {"btn1": "call_button", "pir1": "motion", "band1": "wristband"})
    ['ec/v1/h1/wristband/band1/cmd', 'ec/v1/h1/call_button/btn1/cmd']
    """
    return [command_topic(site, DeviceKind(kind), dev) for dev, kind in sorted(devices.items()) if kind in PROMPT_KINDS]


def step_of(c: CheckIn) -> CheckInStep:
    """The store's record of an engine step."""
    return CheckInStep(c.site, c.time_ms, c.prompt_ms, c.what, tuple(c.types), c.detail)


class CheckInRelay:
    """Drains the engine's check-in steps: records them and sends fresh prompts to the home."""

    def __init__(self, *, store: AlertStore, commands: CommandPublisher | None, clock: Callable[[], int]) -> None:
        self.store = store
        self.steps = CheckInStore(store)
        self.commands = commands
        self.clock = clock
        self.sent = 0
        """Prompts published (for tests and metrics)."""
        self._tasks: set[asyncio.Task[None]] = set()

    def drain(self, engine: CheckInSource | None) -> None:
        """Take the engine's new steps (cheap, on the loop) and handle them in a background task."""
        if engine is None or not engine.checkins:
            return
        steps = list(engine.checkins)
        engine.checkins.clear()
        task = asyncio.get_running_loop().create_task(
            self.handle(steps, window_s=engine.config.checkin_window_s), name="checkins"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, steps: list[CheckIn], *, window_s: int) -> None:
        """Record ``steps``; publish each new prompt still inside its window. Never raises (logged).

        A prompt already in the store was sent before (a restart replays it while its window is still open): the
        elder is not asked twice.
        """
        try:
            now = self.clock()
            new = await asyncio.to_thread(self.steps.record, [step_of(c) for c in steps], now_ms=now)
            fresh = {(s.site, s.prompt_ms) for s in new if s.what == "prompt"}
            for c in steps:
                if (c.site, c.prompt_ms) in fresh and c.what == "prompt" and now < c.prompt_ms + window_s * 1000:
                    await self._send(c, window_s=window_s, now=now)
        except Exception:
            _LOG.exception("check-in steps could not be handled (%d)", len(steps))

    async def _send(self, c: CheckIn, *, window_s: int, now: int) -> None:
        if self.commands is None:
            return
        ctx = await asyncio.to_thread(self.store.site_context, c.site)
        topics = checkin_topics(c.site, ctx.devices if ctx else {})
        if not topics:
            _LOG.warning("check-in for %s: the home has no call button or wristband to ask through", c.site)
        payload = checkin_command(site=c.site, prompt_ms=c.prompt_ms, window_s=window_s)
        step = step_of(c)
        for topic in topics:
            error: str | None = None
            try:
                await self.commands.publish(topic, payload)
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - no answer then pages: a broker hiccup must not lose the alert
                _LOG.warning("check-in command to %s failed: %s", topic, type(exc).__name__)
                error = f"{type(exc).__name__}: {exc}"
            await asyncio.to_thread(self.steps.audit_command, step, topic=topic, error=error, now_ms=now)

    async def wait(self) -> None:
        """Let the steps already drained finish (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
