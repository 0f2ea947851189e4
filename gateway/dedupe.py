"""Drop redelivered messages by ``(site, device, seq)`` with a small per-device window.

QoS 1 means "at least once": after a reconnect the broker resends what was not acknowledged, and a
retained status comes again on every subscribe. Every device numbers its messages (``seq``), so a
sliding window per device recognises a copy even when messages arrive slightly out of order. A large
backward jump is a device reboot (the counter restarted), not a copy, and is accepted.

>>> d = Deduplicator(window=8)
>>> d.is_duplicate("h1", "mat1", 5)
False
>>> d.remember("h1", "mat1", 5)
>>> d.is_duplicate("h1", "mat1", 5), d.is_duplicate("h1", "mat1", 4), d.is_duplicate("h1", "mat1", 6)
(True, False, False)
>>> d.remember("h1", "mat1", 1_000)
>>> d.is_duplicate("h1", "mat1", 1)  # far behind the window: the device rebooted
False
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

DEFAULT_WINDOW: Final = 256
"""Sequence numbers remembered per device; copies older than this are taken for a reboot."""

DEFAULT_MAX_DEVICES: Final = 200_000
"""Devices remembered at most; the least recently seen are forgotten first."""


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
        """True if this device's ``seq`` was remembered already (within the window)."""
        entry = self._state.get((site, device))
        if entry is None:
            return False
        high, mask = entry
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
            else:
                state = (seq, 1)  # far behind the window: the device counter restarted
            self._state.move_to_end(key)
        self._state[key] = state
        if len(self._state) > self.max_devices:
            self._state.popitem(last=False)

    @property
    def _full(self) -> int:
        return (1 << self.window) - 1
