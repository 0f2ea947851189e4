"""Which Contact ID event each life-safety alert becomes, and which ARC account a home reports under."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from alerts.arc.dc09 import NEW_EVENT, RESTORE, contact_id, valid_account
from detection.models import AlertType

DEFAULT_CODES: Final[dict[str, str]] = {
    AlertType.SOS.value: "101",
    AlertType.CALL_BUTTON.value: "101",
    AlertType.FALL.value: "101",
    AlertType.SMOKE.value: "111",
    AlertType.GAS.value: "151",
    AlertType.VITALS_CRITICAL.value: "100",
}
"""Contact ID event codes: 101 personal emergency (pendant), 111 smoke, 151 gas, 100 medical. Fall has no
standard code: 101 by default, 120 ("panic", Climax PERS coding) when the ARC's contract says so
(``ELDERCARE_ARC_FALL_CODE``)."""

DEFAULT_ZONES: Final[dict[str, str]] = {
    AlertType.SOS.value: "001",
    AlertType.CALL_BUTTON.value: "002",
    AlertType.FALL.value: "003",
    AlertType.SMOKE.value: "004",
    AlertType.GAS.value: "005",
    AlertType.VITALS_CRITICAL.value: "006",
}
"""Contact ID zone ``CCC`` per alert type (the ARC's zone list for every home; docs/alerts.md)."""

TEST_CODE: Final = "602"
"""Contact ID 602: periodic test report (``eldercare arc test``)."""


class ArcConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the ARC is and how our events are coded for it (built from ``ELDERCARE_ARC_*`` settings)."""

    host: str
    port: int
    accounts: dict[str, str] = msgspec.field(default_factory=dict)
    """site → account, agreed with the ARC: a home's own account, wins over everything else."""
    community_accounts: dict[str, str] = msgspec.field(default_factory=dict)
    """community id (the registry's ``communities[].id``) → account: every home of that community reports under it,
    unless it is in :attr:`accounts`; wins over :attr:`account_prefix`."""
    account_prefix: str = ""
    """Otherwise the account is this prefix followed by the digits of the site id (``12`` + ``h0001`` → ``120001``)."""
    receiver: str = ""
    """DC-09 receiver number (``R`` field); empty: omitted."""
    line: str = "0"
    """DC-09 line prefix (``L`` field)."""
    group: str = "01"
    codes: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_CODES))
    zones: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_ZONES))
    timeout_s: float = 10.0
    """Connect and wait-for-answer limit of one attempt."""
    retry_base_s: float = 5.0
    retry_max_s: float = 60.0
    """Backoff between attempts: base, doubling, capped here; a life-safety event is never given up."""
    failed_after: int = 2
    """Failed attempts after which the alert's history shows "ARC delivery failed" (once)."""
    supervision_s: float = 300.0
    """Link test (DC-09 ``NULL`` message) interval; 0: none."""
    supervision_account: str = ""
    """Account of the link test; empty: the prefix, or the first configured account."""

    def __post_init__(self) -> None:
        """Fail fast on a configuration the ARC could not decode."""
        if not 0 < self.port < 65536:
            raise ValueError(f"ARC port must be 1..65535, got {self.port}")
        for site, account in self.accounts.items():
            if not valid_account(account):
                raise ValueError(f"ARC account of {site} must be 3-16 hex characters, got {account!r}")
        for community, account in self.community_accounts.items():
            if not valid_account(account):
                raise ValueError(f"ARC account of community {community} must be 3-16 hex characters, got {account!r}")
        if self.account_prefix and not re.fullmatch(r"[0-9A-F]{1,12}", self.account_prefix):
            raise ValueError(f"ARC account prefix must be hex digits, got {self.account_prefix!r}")
        for kind, code in self.codes.items():
            if not re.fullmatch(r"[0-9A-F]{3}", code):
                raise ValueError(f"Contact ID code for {kind} must be 3 hex digits, got {code!r}")

    def account_for(self, site: str, *, community: str | None = None) -> str | None:
        """The home's ARC account, or None when it has none (the event cannot be sent).

        Its own (:attr:`accounts`), else its community's (:attr:`community_accounts`), else prefix + site digits.
        """
        if site in self.accounts:
            return self.accounts[site]
        if community is not None and community in self.community_accounts:
            return self.community_accounts[community]
        digits = "".join(c for c in site if c.isdigit())
        account = self.account_prefix + digits.zfill(4) if self.account_prefix else ""
        return account if valid_account(account) else None

    def link_account(self) -> str:
        """Account used by the supervision (link test) messages."""
        if self.supervision_account:
            return self.supervision_account
        if self.account_prefix:
            return self.account_prefix.ljust(4, "0")
        return next(iter([*self.accounts.values(), *self.community_accounts.values()]), "0000")

    def event_data(self, *, site: str, alert_type: str, restore: bool, community: str | None = None) -> str | None:
        """The ``ADM-CID`` data of one alert (or its restore); None when the type is not reported or no account."""
        account, code = self.account_for(site, community=community), self.codes.get(alert_type)
        if account is None or code is None:
            return None
        zone = self.zones.get(alert_type, "000")
        return contact_id(account=account, qualifier=RESTORE if restore else NEW_EVENT, code=code, group=self.group,
                          zone=zone)  # fmt: skip
