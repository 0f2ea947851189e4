r"""SIA DC-09 framing of Contact ID (SIA DC-05) events for an alarm-receiving centre (ARC); pure functions.

A DC-09 message is ``<LF> CRC LEN "ID" seq [Rrcvr] Lpref #acct [data] [_timestamp] <CR>``: ``CRC`` is the
CRC-16/ARC (polynomial 0x8005 reflected, 0xA001; initial value 0) of everything from the first ``"`` to the
character before ``<CR>``, as four upper-case hex digits; ``LEN`` is ``0`` plus the length of that same part in
three hex digits. ``ID`` is ``ADM-CID`` (a Contact ID event ``#acct|QXYZ GG CCC``) or ``NULL`` (link test /
supervision). The receiver answers ``ACK`` (with the message's sequence number and account), ``NAK`` (rejected,
usually a timestamp outside its window: send again) or ``DUH`` (not understood: sending it again will not help).
Sources: ``jvanovost/dc09_spt`` ``dc09_spt/msg/dc09_msg.py`` and ``dc05_msg.py``; ``pysiaalarm``
``utils/regexes.py``; the worked frames of ``research/devices_interop.md`` §4 are this module's doctests.

>>> frame(event_id="ADM-CID", seq=1, account="1234", data="#1234|1101 01 015", timestamp=None)
b'\n21440027"ADM-CID"0001L0#1234[#1234|1101 01 015]\r'
>>> contact_id(account="1234", qualifier=3, code="101", group="01", zone="015")
'#1234|3101 01 015'
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Final

import msgspec

from alerts.arc.errors import FrameError

NEW_EVENT: Final = 1
"""Contact ID qualifier ``Q``: a new event (alarm)."""
RESTORE: Final = 3
"""Contact ID qualifier ``Q``: the condition has been restored (cleared / handled)."""

_ACCOUNT_RE: Final = re.compile(r"[0-9A-F]{3,16}")
_RESPONSE_RE: Final = re.compile(
    r'"(?P<kind>ACK|NAK|DUH|RSP)"(?P<seq>\d{4})(?:R(?P<rcvr>[0-9A-F]{1,6}))?(?:L(?P<line>[0-9A-F]{1,6}))?'
    r"(?:#(?P<account>[0-9A-F]{3,16})|A0)?\[(?P<data>[^\]]*)\](?:_(?P<ts>[0-9:,\-]+))?"
)


def crc16(data: bytes) -> int:
    """CRC-16/ARC (reflected 0xA001, initial 0), the DC-09 message CRC.

    >>> f"{crc16(b'123456789'):04X}"
    'BB3D'
    """
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def valid_account(account: str) -> bool:
    """True for a DC-09 account: 3 to 16 upper-case hex characters."""
    return _ACCOUNT_RE.fullmatch(account) is not None


def timestamp(when: dt.datetime) -> str:
    """The DC-09 timestamp ``_HH:MM:SS,MM-DD-YYYY`` (UTC)."""
    return when.astimezone(dt.UTC).strftime("_%H:%M:%S,%m-%d-%Y")


def contact_id(*, account: str, qualifier: int, code: str, group: str = "01", zone: str = "001") -> str:
    """The ``ADM-CID`` data field ``#acct|QXYZ GG CCC`` of one Contact ID event."""
    if qualifier not in (1, 3, 6) or not re.fullmatch(r"[0-9A-F]{3}", code):
        raise ValueError(f"bad Contact ID qualifier/code {qualifier}/{code}")
    if not re.fullmatch(r"[0-9A-F]{2}", group) or not re.fullmatch(r"[0-9A-F]{3}", zone):
        raise ValueError(f"bad Contact ID group/zone {group}/{zone}")
    return f"#{account}|{qualifier}{code} {group} {zone}"


def frame(
    *,
    event_id: str,
    seq: int,
    account: str,
    data: str,
    receiver: str = "",
    line: str = "0",
    timestamp: str | None,
) -> bytes:
    """One complete DC-09 message (``<LF>`` … ``<CR>``); ``seq`` 1..9999, ``timestamp`` from :func:`timestamp`."""
    if not 1 <= seq <= 9999:
        raise ValueError(f"DC-09 sequence number must be 1..9999, got {seq}")
    if not valid_account(account):
        raise ValueError(f"DC-09 account must be 3-16 hex characters, got {account!r}")
    rcvr = f"R{receiver}" if receiver else ""
    body = f'"{event_id}"{seq:04d}{rcvr}L{line}#{account}[{data}]{timestamp or ""}'.encode("ascii")
    if len(body) > 0xFFF:
        raise ValueError("DC-09 message too long")
    return b"\n" + f"{crc16(body):04X}0{len(body):03X}".encode("ascii") + body + b"\r"


class Kind(StrEnum):
    """The receiver's answer."""

    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"
    RSP = "RSP"


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed answer of the receiver."""

    kind: Kind
    seq: int
    account: str | None
    receiver: str | None
    line: str | None
    timestamp: str | None


def parse_response(raw: bytes) -> Response:
    """Check the CRC and length of one receiver answer and parse it; raise :class:`FrameError`."""
    text = raw.strip(b"\r\n")
    if len(text) < 8:
        raise FrameError("short", raw)
    try:
        crc, length, body = int(text[:4], 16), int(text[4:8], 16), text[8:]
    except ValueError:
        raise FrameError("header", raw) from None
    if length != len(body):
        raise FrameError("length", raw)
    if crc != crc16(body):
        raise FrameError("crc", raw)
    match = _RESPONSE_RE.fullmatch(body.decode("ascii", "replace"))
    if match is None:
        raise FrameError("syntax", raw)
    return Response(
        kind=Kind(match["kind"]),
        seq=int(match["seq"]),
        account=match["account"],
        receiver=match["rcvr"],
        line=match["line"],
        timestamp=match["ts"],
    )
