"""The resident page's "what was learned, what is off and why", read from a backend running in this process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from detection.engine import Engine


class HasEngine(Protocol):
    """A backend whose detection engine exists once it runs (:class:`eldercare.backend.Backend`)."""

    @property
    def engine(self) -> Engine | None:
        """The live engine, or None before it is loaded."""
        ...


def learned_lookup(backend: HasEngine) -> Callable[[str], Mapping[str, object]]:
    """``site → Engine.learned(site)`` for the console; empty until the engine is loaded (on the event loop)."""

    def learned(site: str) -> Mapping[str, object]:
        engine = backend.engine
        return engine.learned(site) if engine is not None else {}

    return learned
