"""Read-only family status pages and the guardian register: who may open the pages and who is told.

The register is :class:`alerts.store.guardians.GuardianStore` (audited, in the alert store's database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from alerts.guardians import GuardianLinks
from alerts.store.guardians import Guardian


class GuardianLookup(Protocol):
    """The guardian register (``alerts.store.guardians.GuardianStore``)."""

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
