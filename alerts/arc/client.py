"""Send one DC-09 message to the ARC over TCP and wait for its answer (the only module with the ARC socket)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from alerts.arc.dc09 import Kind, Response, frame, parse_response, parse_timestamp, timestamp
from alerts.arc.errors import DeliveryError, FrameError

_LOG = logging.getLogger(__name__)


class ArcClient:
    """A DC-09 transmitter: one TCP connection per message, an ``ACK`` with our sequence number and account or bust.

    With ``key`` (AES-128/192/256, see :func:`alerts.arc.dc09.parse_key`) every message is encrypted and only an
    encrypted ``ACK`` counts. A ``NAK`` carries the receiver's time: the difference to ours is kept as
    :attr:`offset_s` and added to the timestamps of the next messages, so a receiver whose clock is off by more than
    its window (DC-09: 20 s ahead / 40 s behind) still accepts the retry.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        receiver: str = "",
        line: str = "0",
        timeout_s: float = 10.0,
        key: bytes | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.receiver = receiver
        self.line = line
        self.timeout_s = timeout_s
        self._key = key  # never logged or shown
        self.offset_s = 0.0
        """The receiver's clock minus ours, learnt from its last NAK."""

    @property
    def encrypted(self) -> bool:
        """True when messages are AES-encrypted."""
        return self._key is not None

    @property
    def target(self) -> str:
        """``host:port`` as recorded in the notification rows."""
        return f"{self.host}:{self.port}"

    async def send(self, *, event_id: str, seq: int, account: str, data: str) -> Response:
        """Send one message and return the receiver's ``ACK``; raise :class:`DeliveryError` for anything else."""
        message = frame(
            event_id=event_id, seq=seq, account=account, data=data, receiver=self.receiver, line=self.line,
            timestamp=timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.offset_s)), key=self._key,
        )  # fmt: skip
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise DeliveryError("connect", f"{self.target}: {type(exc).__name__}") from None
        try:
            writer.write(message)
            await writer.drain()
            raw = await asyncio.wait_for(reader.readuntil(b"\r"), self.timeout_s)
        except TimeoutError:
            raise DeliveryError("timeout", f"no answer from {self.target} in {self.timeout_s:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise DeliveryError("closed", f"{self.target}: {type(exc).__name__}") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        try:
            answer = parse_response(raw, key=self._key)
        except FrameError as exc:
            raise DeliveryError("frame", f"answer failed its {exc.reason} check") from None
        if answer.kind is Kind.NAK:
            self._learn_offset(answer.timestamp)
            raise DeliveryError("nak", f"receiver refused the message (its time {answer.timestamp or '?'})")
        if answer.kind is Kind.DUH:
            raise DeliveryError("duh", "receiver does not understand the message", permanent=True)
        if self.encrypted and not answer.encrypted:
            raise DeliveryError("mismatch", "plain answer to an encrypted message")
        if answer.kind is not Kind.ACK or answer.seq != seq or (answer.account not in (None, account)):
            raise DeliveryError("mismatch", f"{answer.kind} for {answer.seq}/{answer.account}, sent {seq}/{account}")
        return answer

    def _learn_offset(self, stamp: str | None) -> None:
        if not stamp:
            return
        try:
            theirs = parse_timestamp(stamp)
        except ValueError:
            return
        offset = (theirs - dt.datetime.now(dt.UTC)).total_seconds()
        if abs(offset - self.offset_s) > 5:
            _LOG.warning("ARC %s clock differs from ours by %.0f s; timestamps follow its clock", self.target, offset)
        self.offset_s = offset
