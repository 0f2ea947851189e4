"""Read-only family status pages: who may open them (the guardian book) and how links are checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from alerts.guardians import GuardianLinks
from alerts.store.guardians import Guardian


class GuardianLookup(Protocol):
    """Guardians by id (``alerts.store.guardians.GuardianStore`` or a test's dict-backed fake)."""

    def get(self, guardian_id: int) -> Guardian | None:
        """One guardian, or None."""
        ...


@dataclass(frozen=True, slots=True)
class GuardianBook:
    """What the family pages need: the guardians and the link signer their notifications used."""

    guardians: GuardianLookup
    links: GuardianLinks
