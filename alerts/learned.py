"""What each engine learned about its homes, saved to the store for a console without an engine (issue 19).

The resident page shows what the detection core learned about a home and what is off and why. A console process of
its own (``eldercare serve --role console``, the shipped systemd layout) has no engine, so the backend (or each
partition worker) saves ``Engine.learned`` of its homes in the store (:class:`alerts.store.learned.LearnedStore`)
and that console reads it with the time it was saved.

``Engine.learned`` must be called on the event loop (the engine is not thread-safe) and costs tens of microseconds a
home, so each pass reads at most ``per_pass`` homes, in turn, and writes only the homes whose profile changed
(in a thread). With 10,000 homes and a pass every 5 s, every home is read again within about four minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.store.learned import LearnedStore
    from detection.engine import Engine


class LearnedPublisher:
    """Saves changed ``Engine.learned`` profiles, a slice of homes per pass (one per backend or partition worker)."""

    def __init__(self, store: LearnedStore, *, clock: Callable[[], int], per_pass: int = 200) -> None:
        self.store = store
        self.clock = clock
        self.per_pass = per_pass
        self._turn: deque[tuple[Engine, str]] = deque()
        self._digest: dict[str, bytes] = {}

    def collect(self, engines: Iterable[Engine]) -> list[tuple[str, dict[str, object]]]:
        """The next slice's homes whose profile changed since last saved (on the event loop)."""
        engines = list(engines)
        if not self._turn:
            self._turn.extend((e, site) for e in engines for site in list(e.homes))
            # A home no engine here watches any more (its partition moved to another worker, which saves it from
            # now on) is forgotten: should it come back, its profile is written again whatever it was before.
            watched = {site for _, site in self._turn}
            self._digest = {site: d for site, d in self._digest.items() if site in watched}
        current = {id(e) for e in engines}
        changed: list[tuple[str, dict[str, object]]] = []
        for _ in range(min(self.per_pass, len(self._turn))):
            engine, site = self._turn.popleft()
            if id(engine) not in current:  # a partition handed back since the turn began
                continue
            learned = engine.learned(site)
            if not learned:
                continue
            body = json.dumps(learned, sort_keys=True, separators=(",", ":")).encode()
            digest = hashlib.blake2b(body, digest_size=16).digest()
            if self._digest.get(site) != digest:
                changed.append((site, learned))
                self._digest[site] = digest
        return changed

    async def publish(self, engines: Iterable[Engine]) -> int:
        """Collect a slice on the loop and save what changed in a thread; returns how many homes were saved.

        A failed write forgets the slice's digests, so the next turn writes those homes again.
        """
        changed = self.collect(engines)
        if not changed:
            return 0
        try:
            return await asyncio.to_thread(self.store.save, changed, now_ms=self.clock())
        except BaseException:
            for site, _ in changed:
                self._digest.pop(site, None)
            raise
