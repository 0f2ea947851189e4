"""Read-only family status pages and the guardian register: who may open the pages and who is told.

The register is :class:`alerts.store.guardians.GuardianStore` (audited, in the alert store's database).
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.guardians import GuardianLinks
from alerts.store.guardians import GuardianStore


@dataclass(frozen=True, slots=True)
class GuardianBook:
    """What the family pages need: the guardians and the link signer their notifications used."""

    guardians: GuardianStore
    links: GuardianLinks
