"""Drop redelivered messages by ``(site, device, seq)`` with a small per-device window.

QoS 1 means "at least once": after a reconnect the broker resends what was not acknowledged, and a
retained status comes again on every subscribe. Every device numbers its messages (``seq``), so a
sliding window per device recognises a copy even when messages arrive slightly out of order. A large
backward jump is a device reboot (the counter restarted), not a copy, and is accepted.

A device without sequence numbers of its own (Zigbee2MQTT) is numbered by the backend. In the clustered mode each
of its readings takes its number from the message's place in the partition's stream (:func:`stream_seq`, from
:data:`STREAM_SEQ_BASE` up, far above any device's own ``seq``), so a redelivered copy has the same number on any
owner. Such numbers never restart and one device's messages are far apart in a stream shared by many homes, so for
them the rule is monotonic: a reading from a message at or below the device's latest is a copy, however far behind.
Hence all readings of one message are checked before any is remembered (the gateway service does both per batch).

>>> d = Deduplicator(window=8)
>>> d.is_duplicate("h1", "mat1", 5)
False
>>> d.remember("h1", "mat1", 5)
>>> d.is_duplicate("h1", "mat1", 5), d.is_duplicate("h1", "mat1", 4), d.is_duplicate("h1", "mat1", 6)
(True, False, False)
>>> d.remember("h1", "mat1", 1_000)
>>> d.is_duplicate("h1", "mat1", 1)  # far behind the window: the device rebooted
False
>>> d.remember("h1", "0xa4c1", stream_seq(5_000, 0))
>>> d.is_duplicate("h1", "0xa4c1", stream_seq(1_000, 1)), d.is_duplicate("h1", "0xa4c1", stream_seq(5_000, 1))
(True, True)
>>> d.is_duplicate("h1", "0xa4c1", stream_seq(5_001, 0))
False
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

DEFAULT_WINDOW: Final = 256
"""Sequence numbers remembered per device; copies older than this are taken for a reboot."""

DEFAULT_MAX_DEVICES: Final = 200_000
"""Devices remembered at most; the least recently seen are forgotten first."""

STREAM_SEQ_BASE: Final = 1 << 56
"""``seq`` values from here up are numbered by the message's stream sequence (:func:`stream_seq`); the contract's
own ``seq`` is at most 2^53 (docs/contract.md), and InfluxDB's int64 fields hold both."""

STREAM_SLOTS: Final = 16
"""Readings of one device that one streamed message may give (a Z2M state: its events, then a status)."""

_MAX_STREAM_MESSAGE: Final = ((1 << 63) - STREAM_SEQ_BASE) // STREAM_SLOTS
"""Stream sequences below this keep the ``seq`` within an InfluxDB int64."""


def stream_seq(message: int, slot: int) -> int:
    """The ``seq`` of a device's ``slot``-th reading from the message at stream sequence ``message``.

    The same message gives the same numbers on every owner of its partition, and a later message higher ones.

    >>> stream_seq(1100, 1) - STREAM_SEQ_BASE
    17601
    """
    if not 0 <= slot < STREAM_SLOTS:
        raise ValueError(f"slot {slot} outside 0..{STREAM_SLOTS - 1}")
    if not 0 <= message < _MAX_STREAM_MESSAGE:
        raise ValueError(f"stream sequence {message} outside 0..{_MAX_STREAM_MESSAGE - 1}")
    return STREAM_SEQ_BASE + message * STREAM_SLOTS + slot


class Deduplicator:
    """Remembers recent ``seq`` values per device in a bit window (bounded memory, LRU over devices).

    Not thread-safe: one service task owns it. Querying and remembering are separate so a caller can
    remember a message only once it is durable, and a crash before then lets the redelivered copy through.
    """

    __slots__ = ("_state", "max_devices", "window")

    def __init__(self, *, window: int = DEFAULT_WINDOW, max_devices: int = DEFAULT_MAX_DEVICES) -> None:
        if window < 1 or max_devices < 1:
            raise ValueError("window and max_devices must be positive")
        self.window = window
        self.max_devices = max_devices
        # device key -> (highest seq seen, bit mask: bit i set = seq (highest - i) seen)
        self._state: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._state)

    def is_duplicate(self, site: str, device: str, seq: int) -> bool:
        """True if this device's ``seq`` was remembered already (within the window), or is a stream-numbered copy."""
        entry = self._state.get((site, device))
        if entry is None:
            return False
        high, mask = entry
        if seq >= STREAM_SEQ_BASE:  # the message was handled if the device's latest is from it or a later one
            return high >= STREAM_SEQ_BASE and seq // STREAM_SLOTS <= high // STREAM_SLOTS
        behind = high - seq
        if behind < 0 or behind >= self.window:
            return False
        return bool(mask >> behind & 1)

    def remember(self, site: str, device: str, seq: int) -> None:
        """Record that this device's ``seq`` was accepted."""
        key = (site, device)
        entry = self._state.get(key)
        if entry is None:
            state = (seq, 1)
        else:
            high, mask = entry
            behind = high - seq
            if behind < 0:
                shift = -behind
                state = (seq, (mask << shift | 1) & self._full) if shift < self.window else (seq, 1)
            elif behind < self.window:
                state = (high, mask | 1 << behind)
            elif seq >= STREAM_SEQ_BASE:
                state = entry  # an older message of a stream-numbered device (a restore's seeding): the latest stays
            else:
                state = (seq, 1)  # far behind the window: the device counter restarted
            self._state.move_to_end(key)
        self._state[key] = state
        if len(self._state) > self.max_devices:
            self._state.popitem(last=False)

    @property
    def _full(self) -> int:
        return (1 << self.window) - 1
