"""CSV import (dry run, per-row errors, good rows kept) and export of residents and their homes.

One row per resident; residents sharing a ``site`` live in the same home. Headers may be English keys or the
Chinese column names of :data:`COLUMNS`. The result of a parse is a registry document (docs/registry.md) for the
good rows only, so the store imports CSV and JSON the same way.

Exports mask ID numbers and phones (:mod:`alerts.privacy`). A masked value in an uploaded file is not data: the
parse records it in :attr:`ImportResult.masked` instead of validating it, and
:func:`dashboards.registry_import.import_residents` keeps the stored value (a per-row notice) or rejects the row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from alerts.privacy import mask_id_number, mask_phone
from alerts.views import Hierarchy, ResidentView

CATEGORIES: Final[frozenset[str]] = frozenset(
    {"独居", "空巢", "留守", "失能", "半失能", "失智", "高龄", "特困", "低保", "计划生育特殊家庭", "重残", "重点关注"}
)
COLUMNS: Final[dict[str, str]] = {
    "id": "编号",
    "name": "姓名",
    "gender": "性别",
    "birth_year": "出生年份",
    "id_number": "身份证号",
    "phone": "电话",
    "categories": "类别",
    "ability_level": "能力等级",
    "site": "住所编号",
    "grid": "网格",
    "address": "住址",
    "contact_name": "紧急联系人",
    "contact_relation": "关系",
    "contact_phone": "联系人电话",
    "consent": "知情同意",
}
REQUIRED: Final[tuple[str, ...]] = ("id", "name", "id_number", "site", "grid", "address")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PHONE = re.compile(r"1[3-9]\d{9}")
_CHECK_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CODES: Final = "10X98765432"
MASKABLE: Final[tuple[str, ...]] = ("id_number", "phone", "contact_phone")
"""Columns the export masks (and a re-import may therefore carry masked)."""
_TRUE = {"1", "true", "yes", "y", "是", "已签", "同意"}
_FALSE = {"", "0", "false", "no", "n", "否", "未签"}


def id_number_ok(value: str) -> bool:
    """GB 11643-1999 citizen ID number: 17 digits, a valid birth date and the ISO 7064 check character.

    >>> id_number_ok("11010119400101002X"), id_number_ok("110101194001010020")
    (False, True)
    """
    if len(value) != 18 or not value[:17].isdigit():
        return False
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _CHECK_WEIGHTS, strict=True))
    return _CHECK_CODES[total % 11] == value[17].upper()


def looks_masked(value: str) -> bool:
    """True for a value as :func:`alerts.privacy.mask_id_number` / ``mask_phone`` leave it (they write ``*``).

    No real ID number or phone contains ``*``, so one star is enough to tell a masked export value.

    >>> looks_masked("1101**********0024"), looks_masked("139****0001"), looks_masked("13900000001")
    (True, True, False)
    """
    return "*" in value


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one CSV line was rejected (``line`` counts the header as line 1)."""

    line: int
    field: str
    reason: str


@dataclass(slots=True)
class ImportResult:
    """Good rows as a registry document, and the errors of the bad rows."""

    document: dict[str, Any]
    accepted: list[str] = field(default_factory=list)
    """Resident ids of the good rows."""
    errors: list[RowError] = field(default_factory=list)
    line_of: dict[str, int] = field(default_factory=dict)
    """CSV line of each accepted resident id."""
    masked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Resident id → columns that hold a masked export value (resolved against the store before importing)."""
    notices: list[RowError] = field(default_factory=list)
    """Accepted rows with something the user should know (e.g. a masked value replaced by the stored one)."""


FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula to spreadsheet software (CSV injection)."""


def safe_cell(value: object) -> object:
    """A text cell that spreadsheet software shows as text: formula-like text gets a leading apostrophe.

    >>> safe_cell("=1+1"), safe_cell("张桂英"), safe_cell(-3)
    ("'=1+1", '张桂英', -3)
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _unescape(value: str) -> str:
    """Undo :func:`safe_cell` on re-import of an export."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def _canonical(header: str) -> str:
    h = header.strip().lstrip("\ufeff")
    for key, zh in COLUMNS.items():
        if h in (key, zh):
            return key
    return h


def _check_row(
    row: dict[str, str], line: int, grids: set[str], seen: set[str]
) -> tuple[list[RowError], dict[str, Any], tuple[str, ...]]:
    errors: list[RowError] = []
    masked = tuple(name for name in MASKABLE if looks_masked(row.get(name, "")))

    def bad(name: str, reason: str) -> None:
        errors.append(RowError(line, name, reason))

    for name in REQUIRED:
        if not row.get(name):
            bad(name, "required / 必填")
    rid, site = row.get("id", ""), row.get("site", "")
    if rid and not _ID.fullmatch(rid):
        bad("id", "must match [A-Za-z0-9_-]{1,64} / 编号格式不正确")
    elif rid in seen:
        bad("id", "duplicate id in file / 编号重复")
    if site and not _ID.fullmatch(site):
        bad("site", "must match [A-Za-z0-9_-]{1,64} / 住所编号格式不正确")
    if row.get("id_number") and "id_number" not in masked and not id_number_ok(row["id_number"]):
        bad("id_number", "invalid ID number (GB 11643 check) / 身份证号校验失败")
    if row.get("phone") and "phone" not in masked and not _PHONE.fullmatch(row["phone"]):
        bad("phone", "not an 11-digit mobile number / 手机号格式不正确")
    if row.get("contact_phone") and "contact_phone" not in masked and not _PHONE.fullmatch(row["contact_phone"]):
        bad("contact_phone", "not an 11-digit mobile number / 联系人手机号格式不正确")
    if row.get("grid") and row["grid"] not in grids:
        bad("grid", "unknown grid or outside your area / 网格不存在或不在管辖范围")
    cats = [c.strip() for c in re.split(r"[;；、,，|]", row.get("categories", "")) if c.strip()]
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        bad("categories", f"unknown category {'、'.join(unknown)} / 类别不在目录中")
    level: int | None = None
    if row.get("ability_level"):
        try:
            level = int(row["ability_level"])
        except ValueError:
            level = -1
        if not 0 <= level <= 4:
            bad("ability_level", "must be 0..4 (GB/T 42195-2022) / 能力等级应为 0–4")
    birth: int | None = None
    if row.get("birth_year"):
        try:
            birth = int(row["birth_year"])
        except ValueError:
            birth = 0
        if not 1900 <= birth <= dt.date.today().year:
            bad("birth_year", "not a plausible year / 出生年份不正确")
    consent_text = row.get("consent", "").strip().lower()
    if consent_text not in _TRUE | _FALSE:
        bad("consent", "use 是/否 / 请填写 是 或 否")
    resident: dict[str, Any] = {
        "id": rid,
        "name": row.get("name", ""),
        "gender": row.get("gender") or None,
        "birth_year": birth,
        "id_number": row.get("id_number", ""),
        "phone": row.get("phone", ""),
        "categories": cats,
        "ability_level": level,
        "emergency_contacts": (
            [
                {
                    "name": row["contact_name"],
                    "relation": row.get("contact_relation", ""),
                    "phone": row.get("contact_phone", ""),
                }
            ]
            if row.get("contact_name")
            else []
        ),
        "consent": consent_text in _TRUE,
    }
    return errors, resident, masked


def _rows(reader: Iterator[list[str]], result: ImportResult) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each data row; a row the csv module cannot parse ends the file with an error."""
    line = 1
    while True:
        line += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            result.errors.append(RowError(line, "", f"malformed CSV ({exc}) / CSV 格式错误"))
            return
        yield line, values


def parse_residents_csv(text: str, *, hierarchy: Hierarchy) -> ImportResult:
    """Validate every row; good rows become the ``sites`` of a registry document, bad rows become errors."""
    # Universal newlines: a lone CR (old spreadsheet exports) ends a line instead of breaking the parser.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=None))
    try:
        header = [_canonical(h) for h in next(reader)]
    except StopIteration:
        return ImportResult(document={}, errors=[RowError(1, "", "empty file / 空文件")])
    except csv.Error as exc:
        return ImportResult(document={}, errors=[RowError(1, "", f"not a CSV file ({exc}) / 不是有效的 CSV 文件")])
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        return ImportResult(document={}, errors=[RowError(1, m, "missing column / 缺少列") for m in missing])
    grids = {g.id for g in hierarchy.grids}
    sites: dict[str, dict[str, Any]] = {}
    result = ImportResult(document={})
    seen: set[str] = set()
    for line, values in _rows(reader, result):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            result.errors.append(RowError(line, "", f"expected {len(header)} columns, got {len(values)} / 列数不符"))
            continue
        row = {k: _unescape(v.strip()) for k, v in zip(header, values, strict=True)}
        errors, resident, masked = _check_row(row, line, grids, seen)
        site = sites.get(row["site"])
        if not errors and site is not None and site["grid"] != row["grid"]:
            errors.append(
                RowError(line, "grid", f"site {row['site']} is already in grid {site['grid']} / 同一住所网格不一致")
            )
        if errors:
            result.errors.extend(errors)
            continue
        seen.add(resident["id"])
        if site is None:
            site = sites[row["site"]] = {
                "site": row["site"],
                "gateway": f"gw-{row['site']}",
                "grid": row["grid"],
                "address": row["address"],
                "devices": [],
                "residents": [],
            }
        site["residents"].append(resident)
        result.accepted.append(resident["id"])
        result.line_of[resident["id"]] = line
        if masked:
            result.masked[resident["id"]] = masked
    if sites:
        result.document = {
            "version": 1,
            **hierarchy.chain({s["grid"] for s in sites.values()}),
            "sites": list(sites.values()),
        }
    return result


def residents_csv(residents: Iterable[ResidentView]) -> str:
    """Residents as CSV with Chinese headers (ID numbers and phones masked: exports leave the system)."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(COLUMNS.values())
    for r in residents:
        contact = r.contacts[0] if r.contacts else None
        out.writerow(
            safe_cell(cell)
            for cell in [
                r.id,
                r.name,
                r.gender,
                r.birth_year or "",
                mask_id_number(r.id_number),
                mask_phone(r.phone),
                "、".join(r.categories),
                r.ability_level,
                r.site,
                r.place.grid,
                r.address,
                contact.name if contact else "",
                contact.relation if contact else "",
                mask_phone(contact.phone) if contact else "",
                "是" if r.consent else "否",
            ]
        )
    return "\ufeff" + buf.getvalue()
