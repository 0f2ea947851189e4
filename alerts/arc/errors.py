"""Typed errors of the ARC channel; each carries what a caller needs to log or record."""

from __future__ import annotations


class FrameError(Exception):
    """Raised when a DC-09 frame fails its length, CRC or syntax check.

    Attributes:
        reason: ``short``, ``header``, ``length``, ``crc`` or ``syntax``.
        raw: the bytes received.
    """

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(f"bad DC-09 frame ({reason}): {raw[:80]!r}")
        self.reason = reason
        self.raw = raw


class DeliveryError(Exception):
    """Raised when the ARC did not acknowledge a message.

    Attributes:
        reason: ``connect``, ``timeout``, ``closed``, ``frame``, ``mismatch``, ``nak`` or ``duh``.
        permanent: True when sending the same message again cannot help (``duh``: the receiver does not
            understand it).
    """

    def __init__(self, reason: str, detail: str, *, permanent: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.permanent = permanent
