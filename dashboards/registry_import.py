"""The CSV import use case shared by the page and the API: parse, check scope, optionally import, audit."""

from __future__ import annotations

from alerts.store.errors import RegistryImportError
from dashboards.csvio import ImportResult, RowError, parse_residents_csv
from dashboards.models import Account
from dashboards.ports import ConsoleBackend
from dashboards.scope import Scope, scope_of

MAX_BYTES = 5 * 1024 * 1024


def import_residents(backend: ConsoleBackend, user: Account, raw: bytes, *, dry_run: bool) -> ImportResult:
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
    result = parse_residents_csv(text, hierarchy=backend.hierarchy(scope))
    # A resident id that exists outside the user's area must not be overwritten (nor its existence revealed).
    taken = {r.id for r in backend.list_residents(Scope("all"))} - {r.id for r in backend.list_residents(scope)}
    if taken & set(result.accepted):
        keep: list[str] = []
        for site in result.document.get("sites", []):
            site["residents"] = [r for r in site["residents"] if r["id"] not in taken]
            keep.extend(r["id"] for r in site["residents"])
        result.errors.extend(
            RowError(result.line_of[rid], "id", "id not available / 编号不可用")
            for rid in sorted(taken & set(result.accepted))
        )
        result.errors.sort(key=lambda e: e.line)
        result.accepted = keep
    if not dry_run and result.accepted:
        try:
            backend.import_registry(result.document)
        except RegistryImportError as exc:
            result.errors.append(RowError(0, exc.path, exc.reason))
            result.accepted = []
    backend.audit(
        actor=user.id,
        channel="console",
        action="registry.csv_dry_run" if dry_run else "registry.csv_imported",
        entity="registry",
        entity_id="residents",
        detail={"accepted": str(len(result.accepted)), "errors": str(len(result.errors))},
    )
    return result
