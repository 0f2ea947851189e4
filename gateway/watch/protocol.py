"""Framing of the 4G elder watch text protocol: ``[VV*IMEI*LEN*CONTENT]`` over TCP (pure, no I/O).

``VV`` is a two-character vendor code (``3G``, ``SG``, ``CS``, ``ZJ``...), ``IMEI`` the watch id, ``LEN`` four hex
digits meant to give the byte length of ``CONTENT``; some firmwares insert a four-hex-digit index before the length
(``[ZJ*IMEI*IDX*LEN*CONTENT]``). The server's replies reuse the frame's vendor, id and index. Source:
``traccar/traccar`` ``WatchProtocolDecoder.java`` (see /work/shared/research/devices_interop.md §3.2).

Pitfall (verified on the frames recorded in Traccar's ``WatchProtocolDecoderTest.java``): ``LEN`` is not reliable.
Ten of the recorded ``SG`` frames declare 3 to 8 bytes fewer than they carry (``[SG*9081000548*0009*LK,0,100]``
has 8), so a parser that trusts ``LEN`` loses them and everything after them on the connection. Traccar's
``WatchFrameDecoder`` therefore ends a frame at the first ``]`` and binary content (voice, images) escapes its
special bytes as ``}`` followed by 0x01-0x05 for ``} [ ] , *``. This parser does the same and ignores ``LEN``.

The parser keeps at most ``max_frame`` bytes per connection: bytes outside a frame are dropped up to the next ``[``,
a frame without ``]`` within ``max_frame`` bytes is discarded up to its ``]`` without being buffered, and every such
drop is reported with its reason, so a hostile client cannot make memory grow.

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

DEFAULT_MAX_FRAME: Final = 4096
"""Largest frame accepted, bytes; bigger ones (voice messages, photos) are discarded and reported as oversize."""

KEEP_BYTES: Final = 256
"""Bytes of a refused frame kept for its dead-letter entry."""

_HEADER: Final = re.compile(rb"\[([A-Za-z0-9]{2})\*([A-Za-z0-9]{1,20})\*([0-9A-Fa-f]{4})\*(?:([0-9A-Fa-f]{4})\*)?")
_UNESCAPE: Final = {1: b"}", 2: b"[", 3: b"]", 4: b",", 5: b"*"}


def unescape(content: bytes) -> bytes | None:
    r"""Undo the ``}`` escaping of binary content; None if an escape is invalid.

    >>> unescape(b"a}\x01b}\x03"), unescape(b"x}\x09")
    (b'a}b]', None)
    """
    if b"}" not in content:
        return content
    out = bytearray()
    i = 0
    while i < len(content):
        b = content[i]
        if b == 0x7D:
            code = content[i + 1] if i + 1 < len(content) else -1
            escaped = _UNESCAPE.get(code)
            if escaped is None:
                return None
            out += escaped
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


@dataclass(slots=True, frozen=True)
class Frame:
    """One complete frame from a watch."""

    vendor: str
    imei: str
    index: str | None
    content: bytes
    wire: bytes = b""
    """The frame as it was on the wire (for dead-letter entries)."""

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
        """The frame as received, or as it would be encoded when built in code."""
        return self.wire or encode_frame(self.vendor, self.imei, self.content, index=self.index)


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

    __slots__ = ("_buf", "_discarding", "max_frame")

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame (never more than ``max_frame``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Parse as many frames as ``data`` completes; the rest of a partial frame is kept for the next call."""
        out: list[Frame | FrameError] = []
        if self._discarding:
            close = data.find(b"]")
            if close < 0:
                return out
            self._discarding = False
            data = data[close + 1 :]
        buf = self._buf
        buf += data
        while buf:
            if buf[0] != 0x5B:  # '['
                start = buf.find(b"[")
                out.append(self._drop(len(buf) if start < 0 else start, Reason.BAD_FRAME, "bytes outside a frame"))
                continue
            close = buf.find(b"]")
            if close < 0:
                if len(buf) > self.max_frame:
                    err = self._drop(len(buf), Reason.OVERSIZE, f"no ']' within {self.max_frame} bytes")
                    out.append(FrameError(err.reason, err.detail, err.data, err.size, _imei_of(err.data)))
                    self._discarding = True
                break
            inner = buf.rfind(b"[", 1, close)
            if inner > 0:  # a frame cut short, then a new one: drop the stump
                out.append(self._drop(inner, Reason.BAD_FRAME, "frame cut short by the next '['"))
                continue
            wire = bytes(buf[: close + 1])
            del buf[: close + 1]
            out.append(self._parse(wire))
        return out

    def _parse(self, wire: bytes) -> Frame | FrameError:
        head = _HEADER.match(wire)
        kept = wire[:KEEP_BYTES]
        if head is None:
            return FrameError(Reason.BAD_FRAME, "not a [VV*ID*LEN*...] header", kept, len(wire))
        imei = head[2].decode()
        if len(wire) > self.max_frame:
            return FrameError(Reason.OVERSIZE, f"{len(wire)} bytes > {self.max_frame}", kept, len(wire), imei)
        content = unescape(wire[head.end() : -1])
        if content is None:
            return FrameError(Reason.BAD_FRAME, "invalid '}' escape in the content", kept, len(wire), imei)
        index = head[3].decode() if head[4] is not None else None
        return Frame(head[1].decode(), imei, index, content, wire)

    def _drop(self, end: int, reason: Reason, detail: str) -> FrameError:
        buf = self._buf
        err = FrameError(reason, detail, bytes(buf[: min(end, KEEP_BYTES)]), end)
        del buf[:end]
        return err


def _imei_of(data: bytes) -> str | None:
    head = _HEADER.match(data)
    return head[2].decode() if head is not None else None
