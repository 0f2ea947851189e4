r"""SIA DC-09 framing of Contact ID (SIA DC-05) events for an alarm-receiving centre (ARC); pure functions.

A DC-09 message is ``<LF> CRC LEN "ID" seq [Rrcvr] Lpref #acct [data] [_timestamp] <CR>``: ``CRC`` is the
CRC-16/ARC (polynomial 0x8005 reflected, 0xA001; initial value 0) of everything from the first ``"`` to the
character before ``<CR>``, as four upper-case hex digits; ``LEN`` is ``0`` plus the length of that same part in
three hex digits. ``ID`` is ``ADM-CID`` (a Contact ID event ``#acct|QXYZ GG CCC``) or ``NULL`` (link test /
supervision). The receiver answers ``ACK`` (with the message's sequence number and account), ``NAK`` (rejected,
usually a timestamp outside its window: send again) or ``DUH`` (not understood: sending it again will not help).
Sources: ``jvanovost/dc09_spt`` ``dc09_spt/msg/dc09_msg.py`` and ``dc05_msg.py``; ``pysiaalarm``
``utils/regexes.py``; the worked frames of ``research/devices_interop.md`` §4 are this module's doctests.

**Encryption** (DC-09's optional AES, the ARC gives each transmitter a 128/192/256-bit key): a ``*`` before the ID
(``"*ADM-CID"``) and everything after ``[`` is the upper-case hex of AES-CBC with a zero IV over
``pad "|" data "]" _timestamp``: ``pad`` is 1..16 random characters other than ``|``, ``[`` and ``]`` that make the
block a multiple of 16 bytes (no PKCS padding), and the timestamp is mandatory, so a recorded message cannot be
replayed outside the receiver's window. The receiver's ``ACK`` to an encrypted message is encrypted the same way
(``"*ACK"…#acct[hex`` over ``pad "]" _timestamp``); its ``NAK`` (with the receiver's time) and ``DUH`` are not.
Sources: ``dc09_spt`` ``dc09crypt`` / ``dc09decrypt`` / ``dc09answer``, ``pysiaalarm`` ``event.py``
(``encrypt_content``, ``create_response``) and ``utils/regexes.py`` (``encr_adm_content_regex``).

>>> key = bytes(range(16))
>>> msg = frame(event_id="ADM-CID", seq=1, account="1234", data="#1234|1101 01 015", key=key, pad="0" * 9,
...             timestamp="_10:00:00,11-25-2025")
>>> msg[:31], msg[31:47]
(b'\n45450076"*ADM-CID"0001L0#1234[', b'0408B5A9FE0A432D')
>>> decrypt_block(key, msg[31:-1].decode())
'000000000|#1234|1101 01 015]_10:00:00,11-25-2025'

>>> frame(event_id="ADM-CID", seq=1, account="1234", data="#1234|1101 01 015", timestamp=None)
b'\n21440027"ADM-CID"0001L0#1234[#1234|1101 01 015]\r'
>>> contact_id(account="1234", qualifier=3, code="101", group="01", zone="015")
'#1234|3101 01 015'
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from enum import StrEnum
from typing import Final

import msgspec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

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
_ENCRYPTED_RE: Final = re.compile(
    r'"\*(?P<kind>ACK|NAK|DUH|RSP)"(?P<seq>\d{4})(?:R(?P<rcvr>[0-9A-F]{1,6}))?(?:L(?P<line>[0-9A-F]{1,6}))?'
    r"(?:#(?P<account>[0-9A-F]{3,16}))?\[(?P<hex>(?:[0-9A-F]{32})+)"
)
_PAD_CHARS: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "[]|")
_TIME_FORMAT: Final = "%H:%M:%S,%m-%d-%Y"


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
    return when.astimezone(dt.UTC).strftime("_" + _TIME_FORMAT)


def parse_timestamp(text: str) -> dt.datetime:
    """A DC-09 timestamp (with or without its ``_``) as an aware UTC datetime; ``ValueError`` if malformed.

    >>> parse_timestamp("_10:00:05,11-25-2025").isoformat()
    '2025-11-25T10:00:05+00:00'
    """
    return dt.datetime.strptime(text.removeprefix("_"), _TIME_FORMAT).replace(tzinfo=dt.UTC)


def parse_key(hex_key: str) -> bytes:
    """The AES key from its hex form (32, 48 or 64 hex digits: AES-128/192/256); the error never shows the key.

    >>> len(parse_key("00112233445566778899AABBCCDDEEFF"))
    16
    """
    text = hex_key.strip()
    if len(text) not in (32, 48, 64) or not re.fullmatch(r"[0-9A-Fa-f]+", text):
        raise ValueError(
            f"the ARC AES key must be 32, 48 or 64 hex digits (AES-128/192/256), got {len(text)} characters"
        )
    return bytes.fromhex(text)


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(bytes(16)))  # DC-09: CBC with an all-zero IV


def encrypt_block(key: bytes, plain: str) -> str:
    """AES-CBC (zero IV) of ``plain`` (already a multiple of 16 bytes) as upper-case hex."""
    raw = plain.encode("ascii")
    if len(raw) % 16:
        raise ValueError("DC-09 encrypted block must be a multiple of 16 bytes")
    encryptor = _cipher(key).encryptor()
    return (encryptor.update(raw) + encryptor.finalize()).hex().upper()


def decrypt_block(key: bytes, hex_text: str) -> str:
    """The plain text of an encrypted DC-09 block (``latin-1``: a wrong key gives garbage, not an exception)."""
    raw = bytes.fromhex(hex_text)
    if not raw or len(raw) % 16:
        raise ValueError("DC-09 encrypted block must be a non-empty multiple of 16 bytes")
    decryptor = _cipher(key).decryptor()
    return (decryptor.update(raw) + decryptor.finalize()).decode("latin-1")


def padding(length: int) -> str:
    """Random pad characters (never ``|``, ``[``, ``]``) making a block of ``length`` characters a multiple of 16."""
    return "".join(secrets.choice(_PAD_CHARS) for _ in range(16 - length % 16))


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
    key: bytes | None = None,
    pad: str | None = None,
) -> bytes:
    """One complete DC-09 message (``<LF>`` … ``<CR>``); ``seq`` 1..9999, ``timestamp`` from :func:`timestamp`.

    With ``key`` the message is encrypted (``*`` before the ID; the timestamp is then required); ``pad`` fixes the
    pad characters (doctests), otherwise they are random.
    """
    if not 1 <= seq <= 9999:
        raise ValueError(f"DC-09 sequence number must be 1..9999, got {seq}")
    if not valid_account(account):
        raise ValueError(f"DC-09 account must be 3-16 hex characters, got {account!r}")
    rcvr = f"R{receiver}" if receiver else ""
    if key is None:
        content = f"{data}]{timestamp or ''}"
    else:
        if not timestamp:
            raise ValueError("an encrypted DC-09 message needs its timestamp")
        inner = f"|{data}]{timestamp}"
        content = encrypt_block(key, (padding(len(inner)) if pad is None else pad) + inner)
        event_id = "*" + event_id
    body = f'"{event_id}"{seq:04d}{rcvr}L{line}#{account}[{content}'.encode("ascii")
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
    encrypted: bool = False


def parse_response(raw: bytes, *, key: bytes | None = None) -> Response:
    """Check the CRC and length of one receiver answer and parse it; raise :class:`FrameError`.

    An encrypted answer (``"*ACK"``) is decrypted with ``key``; it must decrypt to ``pad "]" _timestamp``
    (reason ``decrypt`` otherwise, e.g. the receiver has another key).
    """
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
    encrypted = _ENCRYPTED_RE.fullmatch(body.decode("ascii", "replace"))
    if encrypted is not None:
        if key is None:
            raise FrameError("encrypted", raw)
        plain = decrypt_block(key, encrypted["hex"])
        stamp = plain.rsplit("]", 1)[-1] if "]" in plain else ""
        try:
            parse_timestamp(stamp)
        except ValueError:
            raise FrameError("decrypt", raw) from None
        return Response(
            kind=Kind(encrypted["kind"]), seq=int(encrypted["seq"]), account=encrypted["account"],
            receiver=encrypted["rcvr"], line=encrypted["line"], timestamp=stamp.removeprefix("_"), encrypted=True,
        )  # fmt: skip
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
