"""The CSV import use case shared by the page and the API: parse, check scope, optionally import, audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.privacy import mask_id_number, mask_phone
from alerts.queries import StoreBackend
from alerts.scope import Scope, scope_of
from alerts.store.errors import RegistryImportError
from alerts.views import Account, ResidentView
from dashboards.csvio import ImportResult, RowError, parse_residents_csv

MAX_BYTES = 5 * 1024 * 1024
_KEPT = "masked value: the stored one is kept / 脱敏值：保留系统中已有的号码"
_NO_STORED = "masked value and nothing stored to keep: enter the full number / 脱敏值且系统中无原号码，请填写完整号码"
_FOREIGN_HOME = "home not available / 住所编号不可用"
_MISMATCH = "masked value differs from the stored one: enter the full number / 脱敏值与已有号码不符，请填写完整号码"


def import_residents(backend: StoreBackend, user: Account, raw: bytes, *, dry_run: bool) -> ImportResult:
    """Validate a CSV upload against the user's part of the hierarchy; unless ``dry_run``, import the good rows."""
    scope = scope_of(user)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")  # spreadsheets saved on Chinese Windows
        except UnicodeDecodeError:
            return ImportResult(
                document={}, errors=[RowError(1, "", "file is not UTF-8 or GB18030 / 文件编码无法识别")]
            )
    tree = backend.hierarchy(scope)
    result = parse_residents_csv(text, hierarchy=tree)
    mine = {r.id: r for r in backend.list_residents(scope)}
    # A resident id that exists outside the user's area must not be overwritten (nor its existence revealed).
    taken = {r.id for r in backend.list_residents(Scope("all"))} - set(mine)
    _drop(result, [RowError(result.line_of[rid], "id", "id not available / 编号不可用") for rid in sorted(taken)
                   if rid in result.line_of])  # fmt: skip
    _drop(result, _foreign_homes(backend, result, {g.id for g in tree.grids}))
    _resolve_masked(result, mine)
    if not dry_run and result.accepted:
        try:
            backend.import_registry(result.document, actor=user.id)
        except RegistryImportError as exc:
            result.errors.append(RowError(0, exc.path, exc.reason))
            result.accepted = []
        else:
            _audit_rows(backend, user, result)
    backend.audit(
        actor=user.id,
        channel="console",
        action="registry.csv_dry_run" if dry_run else "registry.csv_imported",
        entity="registry",
        entity_id="residents",
        detail={
            "accepted": str(len(result.accepted)),
            "errors": str(len(result.errors)),
            "kept_stored": str(len(result.notices)),
        },
    )
    return result


def _foreign_homes(backend: StoreBackend, result: ImportResult, my_grids: set[str]) -> list[RowError]:
    """Rows naming a home (住所编号) that exists outside the importer's area: moving it would hijack its alerts."""
    errors = []
    for site in result.document.get("sites", []):
        grid = backend.site_grid(site["site"])
        if grid is not None and grid not in my_grids:
            errors += [RowError(result.line_of[r["id"]], "site", _FOREIGN_HOME) for r in site["residents"]]
    return errors


def _audit_rows(backend: StoreBackend, user: Account, result: ImportResult) -> None:
    """One audit entry per imported resident, with the importing user as actor."""
    places = {r["id"]: (site["site"], site.get("grid", "")) for site in result.document.get("sites", [])
              for r in site["residents"]}  # fmt: skip
    for rid in result.accepted:
        site, grid = places.get(rid, ("", ""))
        backend.audit(
            actor=user.id, channel="console", action="resident.imported", entity="resident", entity_id=rid,
            detail={"line": str(result.line_of.get(rid, 0)), "site": site, "grid": grid},
        )  # fmt: skip


def _residents(result: ImportResult) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for site in result.document.get("sites", []) for r in site["residents"]}


def _drop(result: ImportResult, errors: list[RowError]) -> None:
    """Reject the rows of ``errors``: remove their residents (and homes left empty) from the document."""
    if not errors:
        return
    lines = {e.line for e in errors}
    gone = {rid for rid, line in result.line_of.items() if line in lines}
    sites = []
    for site in result.document.get("sites", []):
        site["residents"] = [r for r in site["residents"] if r["id"] not in gone]
        if site["residents"]:
            sites.append(site)
    if result.document:
        result.document["sites"] = sites
    result.accepted = [rid for rid in result.accepted if rid not in gone]
    result.notices = [n for n in result.notices if n.line not in lines]
    result.errors.extend(errors)
    result.errors.sort(key=lambda e: e.line)


def _stored_value(field: str, stored: ResidentView, resident: Mapping[str, Any]) -> str:
    if field == "id_number":
        return stored.id_number
    if field == "phone":
        return stored.phone
    name = resident["emergency_contacts"][0]["name"]
    return next((c.phone for c in stored.contacts if c.name == name), "")


def _resolve_masked(result: ImportResult, stored: Mapping[str, ResidentView]) -> None:
    """Put the stored value in place of each masked one (a notice), or reject the row if there is none to keep."""
    residents = _residents(result)
    errors: list[RowError] = []
    for rid, fields in result.masked.items():
        resident = residents.get(rid)
        if resident is None:
            continue  # already rejected
        line = result.line_of[rid]
        old = stored.get(rid)
        for field in fields:
            if field == "contact_phone" and not resident["emergency_contacts"]:
                continue  # no contact name on the row: the contact columns are not imported at all
            value = resident["emergency_contacts"][0]["phone"] if field == "contact_phone" else resident[field]
            current = _stored_value(field, old, resident) if old is not None else ""
            mask = mask_id_number if field == "id_number" else mask_phone
            if not current:
                errors.append(RowError(line, field, _NO_STORED))
            elif mask(current) != value:
                errors.append(RowError(line, field, _MISMATCH))
            else:
                if field == "contact_phone":
                    resident["emergency_contacts"][0]["phone"] = current
                else:
                    resident[field] = current
                result.notices.append(RowError(line, field, _KEPT))
    result.notices.sort(key=lambda n: n.line)
    _drop(result, errors)
