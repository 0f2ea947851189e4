"""Each home's budget of messages that are not life-safety: what one gateway floods costs a topic check, not a write.

Every home's messages reach the backend through shared broker sessions in arrival order, and mosquitto has no
per-client publish rate limit, so a gateway account (in the hands of whoever holds the box) publishing valid
telemetry as fast as it can made every other home's messages wait behind its writes, a Zigbee2MQTT home's call
button included (its press comes on the main session with the rest of that home's devices). A token bucket per home
(``rate_per_s`` refilled, ``burst`` at most) now decides whether a message is taken. A message whose topic says it
cannot be life-safety (a contract message's telemetry, status or event of a kind without a life-safety event,
:func:`gateway.contract.plain_site`; a Zigbee2MQTT bridge message, :func:`gateway.z2m.adapter.bridge_site`) spends
the budget before it is decoded, one message and one more per KiB of payload (a Z2M ``bridge/devices`` of 64 KiB is
65); any other reading once decoded, one each; a life-safety reading (SOS, fall, smoke and gas alarms, call button)
is never budgeted. One over the budget is counted
in the dead-letter record (reason ``over_budget``, one sample per home and batch, the rest counted), not stored and
not confirmed, so a gateway with an outbox sends it again later and loses nothing (docs/contract.md, "Stored
confirmations"). Configured by ``ELDERCARE_SITE_BUDGET`` (``rate/burst``, or ``off``); docs/operations.md.

The defaults leave room for what real homes send: the contract's cadences come to well under one message a second
for a home of ten devices, a Zigbee2MQTT plug reporting power every few seconds a few more, and an outbox replayed
after a day offline about 3,500 readings; the burst (20,000) holds several days of a home's readings.

>>> budget = SiteBudget(rate_per_s=1.0, burst=2)
>>> [budget.take("h1", now=0.0) for _ in range(3)], budget.take("h2", now=0.0)
([True, True, False], True)
>>> budget.take("h1", now=1.0), budget.take("h1", now=1.0)
(True, False)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

DEFAULT_RATE_PER_S: Final = 50.0
"""Messages a second a home may send, sustained, that are not life-safety."""

DEFAULT_BURST: Final = 20_000
"""Messages a home may send at once (an outbox replayed after an outage) before the rate applies."""

MAX_SITES: Final = 200_000
"""Homes tracked at once; the least recently seen is forgotten beyond it (it starts again with a full burst)."""


class SiteBudget:
    """A token bucket per home; :meth:`take` is called once per decoded reading that is not life-safety."""

    __slots__ = ("_buckets", "burst", "clock", "max_sites", "rate_per_s")

    def __init__(
        self,
        *,
        rate_per_s: float = DEFAULT_RATE_PER_S,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        max_sites: int = MAX_SITES,
    ) -> None:
        if rate_per_s <= 0 or burst < 1 or max_sites < 1:
            raise ValueError("rate_per_s must be positive and burst and max_sites at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.max_sites = max_sites
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # site -> (tokens, at)

    def __repr__(self) -> str:
        return f"{self.rate_per_s:g}/s, burst {self.burst}"

    def take(self, site: str, *, now: float | None = None, cost: int = 1) -> bool:
        """Spend ``cost`` (one message, more for a large one) of ``site``'s budget; False if not that much is left."""
        at = self.clock() if now is None else now
        buckets = self._buckets
        held = buckets.get(site)
        if held is None:
            tokens = float(self.burst)
            if len(buckets) >= self.max_sites:
                buckets.popitem(last=False)
        else:
            tokens = min(float(self.burst), held[0] + (at - held[1]) * self.rate_per_s)
            buckets.move_to_end(site)
        if tokens < cost:
            buckets[site] = (tokens, at)
            return False
        buckets[site] = (tokens - cost, at)
        return True


def parse_budget(text: str) -> SiteBudget | None:
    """``ELDERCARE_SITE_BUDGET``: ``rate/burst`` (messages a second, messages at once), or ``off``.

    >>> parse_budget("50/20000")
    50/s, burst 20000
    >>> parse_budget("off") is None
    True
    >>> parse_budget("fast")
    Traceback (most recent call last):
    ValueError: expected 'rate/burst' (e.g. '50/20000') or 'off', got 'fast'
    """
    value = text.strip().lower()
    if value in ("off", "none"):
        return None
    rate, sep, burst = value.partition("/")
    try:
        if not sep:
            raise ValueError(text)
        return SiteBudget(rate_per_s=float(rate), burst=int(burst))
    except ValueError:
        raise ValueError(f"expected 'rate/burst' (e.g. '50/20000') or 'off', got {text!r}") from None
