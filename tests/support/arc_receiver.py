"""A real SIA DC-09 receiver (the alarm-receiving centre's side) on a TCP port, written from the spec for the tests.

It shares no code with ``alerts/arc``: its own CRC, its own parser. Each message is checked (length, CRC), recorded,
and answered according to :attr:`ArcReceiver.mode`: ``ack``; ``nak`` (the next :attr:`nak_count` messages are
refused with NAK, then ACK); ``duh``; ``corrupt`` (an ACK whose CRC is wrong); ``silent`` (no answer).
A frame that fails its CRC or length check is always answered with NAK.

With ``key`` it is an encrypting receiver (DC-09 AES, decrypted here with ``cryptography`` directly, not through
``alerts/arc``): an encrypted message (``"*ADM-CID"``) is decrypted, must show ``pad|data]_timestamp`` and is
answered with an encrypted ACK (``"*ACK"…[hex of pad "]" _timestamp``, as pysiaalarm answers); one that does not
decrypt (another key) is answered with NAK. A message whose timestamp lies outside the receiver's window (DC-09 /
pysiaalarm's default: at most 40 s behind or 20 s ahead of the receiver's clock, which is ``clock_offset_s`` off the
machine's) is answered with NAK carrying the receiver's time; an encrypted message without a timestamp too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import threading
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

FRAME_RE = re.compile(
    r'"(?P<id>\*?[A-Z\-]+)"(?P<seq>\d{4})(?:R(?P<rcvr>[0-9A-F]{1,6}))?L(?P<line>[0-9A-F]{1,6})'
    r"#(?P<acct>[0-9A-F]{3,16})\[(?P<data>[^\]]*)\](?:_(?P<ts>\d\d:\d\d:\d\d,\d\d-\d\d-\d{4}))?"
)
ENCRYPTED_RE = re.compile(
    r'"\*(?P<id>[A-Z\-]+)"(?P<seq>\d{4})(?:R(?P<rcvr>[0-9A-F]{1,6}))?L(?P<line>[0-9A-F]{1,6})'
    r"#(?P<acct>[0-9A-F]{3,16})\[(?P<hex>[0-9A-F]+)"
)
PLAIN_RE = re.compile(r"[^|\[\]]*\|(?P<data>[^\]]*)\]_(?P<ts>\d\d:\d\d:\d\d,\d\d-\d\d-\d{4})", re.S)
CID_RE = re.compile(
    r"#(?P<acct>[0-9A-F]{3,16})\|(?P<q>[136])(?P<code>[0-9A-F]{3}) (?P<group>[0-9A-F]{2}) (?P<zone>[0-9A-F]{3})"
)


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0xA001 if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _table()


def arc_crc(data: bytes) -> int:
    """CRC-16/ARC computed with a lookup table (the sender computes it bit by bit)."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


@dataclass
class Received:
    """One message as the receiver saw it."""

    raw: bytes
    crc_ok: bool
    kind: str = ""
    seq: int = 0
    account: str = ""
    data: str = ""
    timestamp: str | None = None
    answer: str = ""
    encrypted: bool = False
    why: str = ""
    """Why it was refused (``crc``, ``decrypt``, ``stale``, ``no timestamp``), for the tests' messages."""

    @property
    def contact_id(self) -> tuple[str, str, str, str] | None:
        """``(qualifier, code, group, zone)`` of an ADM-CID message."""
        m = CID_RE.fullmatch(self.data)
        return (m["q"], m["code"], m["group"], m["zone"]) if m else None


def _aes(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16))


def answer(
    kind: str, seq: int, account: str | None, *, corrupt: bool = False, key: bytes | None = None, offset_s: float = 0
) -> bytes:
    """A receiver answer frame (NAK carries the receiver's time and the ``A0`` placeholder, as DC-09 shows)."""
    stamp = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)).strftime("_%H:%M:%S,%m-%d-%Y")
    if kind == "NAK":
        body = f'"NAK"0000R0L0A0[]{stamp}'.encode()
    elif key is not None and kind == "ACK":
        plain = f"]{stamp}"
        plain = "0" * (16 - len(plain) % 16) + plain  # pysiaalarm pads its answers with zeros
        enc = _aes(key).encryptor()
        block = (enc.update(plain.encode()) + enc.finalize()).hex().upper()
        body = f'"*ACK"{seq:04d}R0L0#{account}[{block}'.encode()
    else:
        body = f'"{kind}"{seq:04d}R0L0#{account}[]'.encode()
    crc = arc_crc(body) ^ (0x0101 if corrupt else 0)
    return b"\n" + f"{crc:04X}0{len(body):03X}".encode() + body + b"\r"


class ArcReceiver:
    """A threaded TCP DC-09 receiver on 127.0.0.1 (``port=0``: a free port); use as a context manager."""

    def __init__(
        self, *, port: int = 0, mode: str = "ack", nak_count: int = 0, key: bytes | None = None,
        clock_offset_s: float = 0.0,
    ) -> None:  # fmt: skip
        self.mode = mode
        self.nak_count = nak_count
        self.key = key
        self.clock_offset_s = clock_offset_s
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="arc-receiver", daemon=True)

    def __enter__(self) -> ArcReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening (the port is free again for the sender to fail on)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            buf = b""
            try:
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                    while b"\r" in buf:
                        raw, buf = buf.split(b"\r", 1)
                        reply = self._on_frame(raw + b"\r")
                        if reply:
                            conn.sendall(reply)
            except OSError:
                return

    def _on_frame(self, raw: bytes) -> bytes:
        text = raw.strip(b"\r\n")
        try:
            crc, length, body = int(text[:4], 16), int(text[4:8], 16), text[8:]
            ok = length == len(body) and crc == arc_crc(body)
        except ValueError:
            ok, body = False, b""
        got = Received(raw=raw, crc_ok=ok, why="" if ok else "crc")
        text = body.decode("ascii", "replace")
        m = FRAME_RE.fullmatch(text) if ok else None
        e = ENCRYPTED_RE.fullmatch(text) if ok and m is None else None
        if m:
            got.kind, got.seq, got.account, got.data, got.timestamp = (
                m["id"], int(m["seq"]), m["acct"], m["data"], m["ts"],
            )  # fmt: skip
        elif e:
            got.kind, got.seq, got.account, got.encrypted = e["id"], int(e["seq"]), e["acct"], True
            plain = self._decrypt(e["hex"])
            p = PLAIN_RE.fullmatch(plain) if plain is not None else None
            if p is None:
                got.why = "decrypt"
            else:
                got.data, got.timestamp = p["data"], p["ts"]
        refused = got.why or ("" if m or e else "syntax") or self._check_time(got)
        got.why = refused
        with self._cond:
            if refused:
                got.answer = "NAK"
            elif self.mode == "nak" and self.nak_count > 0:
                self.nak_count -= 1
                got.answer = "NAK"
            elif self.mode in ("duh", "silent", "corrupt"):
                got.answer = self.mode
            else:
                got.answer = "ACK"
            self.received.append(got)
            self._cond.notify_all()
        if got.answer == "silent":
            return b""
        if got.answer == "corrupt":
            return answer("ACK", got.seq, got.account, corrupt=True)
        key = self.key if got.encrypted else None
        return answer(got.answer.upper(), got.seq, got.account, key=key, offset_s=self.clock_offset_s)

    def _decrypt(self, hex_text: str) -> str | None:
        if self.key is None or len(hex_text) % 32:
            return None
        dec = _aes(self.key).decryptor()
        return (dec.update(bytes.fromhex(hex_text)) + dec.finalize()).decode("latin-1")

    def _check_time(self, got: Received) -> str:
        if got.timestamp is None:
            return "no timestamp" if got.encrypted else ""
        sent = dt.datetime.strptime(got.timestamp, "%H:%M:%S,%m-%d-%Y").replace(tzinfo=dt.UTC)
        ours = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset_s)
        ahead = (sent - ours).total_seconds()
        return "" if -40 <= ahead <= 20 else "stale"

    def wait(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until ``count`` messages arrived in total; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"ARC receiver got {len(self.received)} of {count} messages")
                self._cond.wait(left)
            return list(self.received)

    def events(self) -> list[Received]:
        """The acknowledged Contact ID events so far."""
        with self._cond:
            return [r for r in self.received if r.kind == "ADM-CID" and r.answer == "ACK"]
