"""Framing of the 4G elder watch text protocol: ``[VV*IMEI*LEN*CONTENT]`` over TCP (pure, no I/O).

``VV`` is a two-character vendor code (``3G``, ``SG``, ``CS``, ``ZJ``...), ``IMEI`` the watch id, ``LEN`` four hex
digits giving the byte length of ``CONTENT``; some firmwares insert a four-hex-digit index before the length
(``[ZJ*IMEI*IDX*LEN*CONTENT]``). The server's replies reuse the frame's vendor, id and index. Source:
``traccar/traccar`` ``WatchProtocolDecoder.java`` (see /work/shared/research/devices_interop.md §3.2).

The length, not a search for ``]``, ends a frame: voice and image frames carry binary content. The parser keeps at
most one frame's worth of bytes per connection (:attr:`FrameParser.max_buffer`): garbage is dropped up to the next
``[``, a frame declaring more than ``max_content`` bytes is skipped without being buffered, and every such drop is
reported with its reason, so a hostile client cannot make memory grow.

>>> p = FrameParser()
>>> [f.command for f in p.feed(b"[SG*8800000015*0002*LK][3G*4700186508*000B*LK,0,1")]
['LK']
>>> [(f.imei, f.args) for f in p.feed(b"0,100]")]
[('4700186508', ['0', '10', '100'])]
>>> encode_frame("3G", "4700186508", "LK")
b'[3G*4700186508*0002*LK]'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from gateway.errors import Reason

MAX_HEADER: Final = 40
"""Longest header ``[VV*<id up to 20>*IDX*LEN*`` (35 bytes) with room to spare."""

DEFAULT_MAX_CONTENT: Final = 4096
"""Largest content accepted; bigger frames (voice messages, photos) are skipped and reported as oversize."""

KEEP_BYTES: Final = 256
"""Bytes of a refused frame kept for its dead-letter entry."""

_HEADER: Final = re.compile(rb"\[([A-Za-z0-9]{2})\*([A-Za-z0-9]{1,20})\*([0-9A-Fa-f]{4})\*(?:([0-9A-Fa-f]{4})\*)?")


@dataclass(slots=True, frozen=True)
class Frame:
    """One complete frame from a watch."""

    vendor: str
    imei: str
    index: str | None
    content: bytes

    @property
    def text(self) -> str:
        """The content as text (UTF-8; Wi-Fi names may be anything, so bad bytes are replaced)."""
        return self.content.decode("utf-8", errors="replace")

    @property
    def command(self) -> str:
        """The command word before the first comma (``LK``, ``UD``, ``AL``...)."""
        return self.text.split(",", 1)[0]

    @property
    def args(self) -> list[str]:
        """The comma-separated values after the command word (empty for a bare ``LK``)."""
        parts = self.text.split(",")
        return parts[1:]

    def raw(self) -> bytes:
        """The frame as it was on the wire (for dead-letter entries)."""
        index = f"{self.index}*" if self.index is not None else ""
        head = f"[{self.vendor}*{self.imei}*{index}{len(self.content):04X}*".encode()
        return head + self.content + b"]"


@dataclass(slots=True, frozen=True)
class FrameError:
    """Bytes that were dropped instead of parsed, with the reason (becomes a dead-letter entry)."""

    reason: Reason
    detail: str
    data: bytes
    """The first :data:`KEEP_BYTES` of what was dropped."""
    size: int
    """How many bytes were dropped."""
    imei: str | None = None
    """The id in the header, when the header was readable."""


def encode_frame(vendor: str, imei: str, content: str | bytes, *, index: str | None = None) -> bytes:
    """One frame as the watches (and their servers) write it; ``LEN`` in upper-case hex as in recorded frames."""
    body = content.encode() if isinstance(content, str) else content
    idx = f"{index}*" if index is not None else ""
    return f"[{vendor}*{imei}*{idx}{len(body):04X}*".encode() + body + b"]"


REPLIES: Final[dict[str, str]] = {"LK": "LK", "AL": "AL", "INIT": "INIT,1", "TKQ": "TKQ", "TKQ2": "TKQ2"}
"""Commands a watch expects an answer to, and the answer (Traccar's ``sendResponse`` calls); ``AL_LTE`` → ``AL``."""


def reply_for(frame: Frame) -> bytes | None:
    """The server's answer to a frame, or None when the watch expects none (``UD``, vitals...).

    >>> reply_for(Frame("3G", "8809008845", None, b"AL,271219,094744"))
    b'[3G*8809008845*0002*AL]'
    >>> reply_for(Frame("ZJ", "014111001332708", "0075", b"LK")), reply_for(Frame("SG", "1", None, b"UD,1"))
    (b'[ZJ*014111001332708*0075*0002*LK]', None)
    """
    command = frame.command
    answer = REPLIES.get(command)
    if answer is None and command.startswith("AL"):
        answer = "AL"
    if answer is None:
        return None
    return encode_frame(frame.vendor, frame.imei, answer, index=frame.index)


class FrameParser:
    """Incremental frame parser for one TCP connection: feed it what ``read`` returned, get frames and drops."""

    __slots__ = ("_buf", "_skip", "max_content")

    def __init__(self, *, max_content: int = DEFAULT_MAX_CONTENT) -> None:
        self.max_content = max_content
        self._buf = bytearray()
        self._skip = 0

    @property
    def max_buffer(self) -> int:
        """Most bytes this parser ever holds between two calls."""
        return MAX_HEADER + self.max_content + 1

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Parse as many frames as ``data`` completes; the rest of a partial frame is kept for the next call."""
        out: list[Frame | FrameError] = []
        if self._skip:
            taken = min(self._skip, len(data))
            self._skip -= taken
            data = data[taken:]
        buf = self._buf
        buf += data
        while buf:
            if buf[0] != 0x5B:  # '['
                start = buf.find(b"[")
                end = len(buf) if start < 0 else start
                out.append(self._drop(end, Reason.BAD_FRAME, "bytes outside a frame"))
                continue
            head = _HEADER.match(buf)
            if head is None:
                close = buf.find(b"]", 0, MAX_HEADER)
                if close < 0 and len(buf) < MAX_HEADER:
                    break  # maybe a header still arriving
                nxt = buf.find(b"[", 1)
                end = close + 1 if close >= 0 else (nxt if nxt > 0 else len(buf))
                out.append(self._drop(end, Reason.BAD_FRAME, "not a [VV*ID*LEN*...] header"))
                continue
            result = self._frame(head)
            if result is None:
                break  # the rest of the content is still arriving
            out.append(result)
        return out

    def _frame(self, head: re.Match[bytes]) -> Frame | FrameError | None:
        """The frame whose header ``head`` matched, a drop, or None to wait for more bytes."""
        buf = self._buf
        vendor, imei = head[1].decode(), head[2].decode()
        index_pending = False
        if head[4] is not None:
            # Either [VV*ID*IDX*LEN*content] or [VV*ID*LEN*content] whose content starts like "ABCD*": take the
            # index form if its length lands on the closing bracket, wait while it may still do so.
            length = int(head[4], 16)
            end = head.end() + length
            if length <= self.max_content:
                if len(buf) > end and buf[end] == 0x5D:
                    frame = Frame(vendor, imei, head[3].decode(), bytes(buf[head.end() : end]))
                    del buf[: end + 1]
                    return frame
                index_pending = len(buf) <= end
        start = head.start(4) if head[4] is not None else head.end()
        length = int(head[3], 16)
        end = start + length
        if length > self.max_content:
            if index_pending:
                return None
            data = bytes(buf[: min(len(buf), KEEP_BYTES)])
            total = end + 1
            if len(buf) >= total:
                del buf[:total]
            else:
                self._skip = total - len(buf)
                buf.clear()
            return FrameError(Reason.OVERSIZE, f"content of {length} bytes > {self.max_content}", data, total, imei)
        if len(buf) <= end:
            return None
        if buf[end] != 0x5D:  # ']'
            if index_pending:
                return None
            nxt = buf.find(b"[", 1)
            err = self._drop(nxt if nxt > 0 else end + 1, Reason.BAD_FRAME, "length does not end on ']'")
            return FrameError(err.reason, err.detail, err.data, err.size, imei)
        frame = Frame(vendor, imei, None, bytes(buf[start:end]))
        del buf[: end + 1]
        return frame

    def _drop(self, end: int, reason: Reason, detail: str) -> FrameError:
        buf = self._buf
        err = FrameError(reason, detail, bytes(buf[: min(end, KEEP_BYTES)]), end)
        del buf[:end]
        return err
