"""Read-only family status pages and the guardian register: who may open the pages and who is told.

The alert store's implementation is :class:`alerts.store.guardians.GuardianStore`; :class:`MemoryGuardians` is the
in-memory one used with the in-memory backend.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from alerts.guardians import GuardianLinks
from alerts.store.errors import RecordNotFound
from alerts.store.guardians import Guardian


class GuardianLookup(Protocol):
    """The guardian register (``alerts.store.guardians.GuardianStore`` or :class:`MemoryGuardians`)."""

    def get(self, guardian_id: int) -> Guardian | None:
        """One guardian, or None."""
        ...

    def for_resident(self, resident_id: str) -> list[Guardian]:
        """Every guardian of a resident (with or without consent)."""
        ...

    def add(
        self,
        *,
        resident_id: str,
        name: str,
        relation: str,
        phone: str,
        channels: Sequence[str],
        consent: bool,
        actor: str,
        now_ms: int,
        lang: str = "zh",
    ) -> Guardian:
        """Register a guardian (consent recorded now if given)."""
        ...

    def set_consent(self, guardian_id: int, consent: bool, *, actor: str, now_ms: int) -> Guardian:
        """Record or withdraw consent."""
        ...


@dataclass(frozen=True, slots=True)
class GuardianBook:
    """What the family pages need: the guardians and the link signer their notifications used."""

    guardians: GuardianLookup
    links: GuardianLinks


class MemoryGuardians:
    """Guardians in a dict (no audit: the in-memory backend's companion for tests and demos)."""

    def __init__(self) -> None:
        self._rows: dict[int, Guardian] = {}
        self._lock = threading.Lock()

    def get(self, guardian_id: int) -> Guardian | None:
        """One guardian, or None."""
        return self._rows.get(guardian_id)

    def for_resident(self, resident_id: str) -> list[Guardian]:
        """Every guardian of a resident."""
        return [g for g in self._rows.values() if g.resident_id == resident_id]

    def add(
        self,
        *,
        resident_id: str,
        name: str,
        relation: str,
        phone: str,
        channels: Sequence[str],
        consent: bool,
        actor: str,
        now_ms: int,
        lang: str = "zh",
    ) -> Guardian:
        """Register a guardian."""
        with self._lock:
            g = Guardian(
                len(self._rows) + 1, resident_id, name, relation, phone, tuple(channels), lang, consent,
                now_ms if consent else None,
            )  # fmt: skip
            self._rows[g.id] = g
            return g

    def set_consent(self, guardian_id: int, consent: bool, *, actor: str, now_ms: int) -> Guardian:
        """Record or withdraw consent."""
        with self._lock:
            g = self._rows.get(guardian_id)
            if g is None:
                raise RecordNotFound("guardian", str(guardian_id))
            self._rows[guardian_id] = replace(g, consent=consent, consent_ms=now_ms if consent else None)
            return self._rows[guardian_id]
