"""CSV import: dry run, per-row errors with line and reason, good rows kept; scoped; CSV export masked."""

from __future__ import annotations

import csv
import io

from dash_fixtures import IDS
from dash_helpers import Backend, login
from fastapi.testclient import TestClient

from alerts.scope import Scope
from dashboards.csvio import id_number_ok

HEADER = "编号,姓名,性别,出生年份,身份证号,电话,类别,能力等级,住所编号,网格,住址,紧急联系人,关系,联系人电话,知情同意\n"
GOOD_ID = "110101193812120018"
ROWS = [
    # line 2 ok (重点关注: close watch, a shorter inactivity backstop)
    f"R10,周桂兰,F,1938,{GOOD_ID},13911112222,独居、高龄、重点关注,2,h10,G01,幸福路 1 号,周强,子女,13722223333,是",
    "R11,吴秀英,F,1941,110101194101010011,13911112223,独居,1,h11,G01,幸福路 2 号,,,,是",  # 3: bad ID checksum
    "R12,郑淑珍,F,1939,110101194212120043,1391111,空巢,5,h12,G02,幸福路 3 号,,,,否",  # 4: phone, level
    "R13,王翠兰,F,1940,110101194001010020,13911112224,独居,1,h13,G04,长寿路 9 号,,,,是",  # 5: G04 outside C01
    "R14,冯玉兰,F,1942,110101194201010017,13911112225,孤寡,1,h14,G02,幸福路 4 号,,,,也许",  # 6: category, consent
    "R15,陈桂芳,F,1937,,13911112226,高龄,3,h15,G02,幸福路 5 号,,,,是",  # 7: id_number missing
    f"R10,重复,F,1938,{GOOD_ID},13911112227,高龄,3,h16,G02,幸福路 6 号,,,,是",  # 8: duplicate id
    "R16,只有三列,F",  # 9: column count
    f"R4,冒用,F,1938,{GOOD_ID},13911112228,高龄,3,h17,G01,幸福路 7 号,,,,是",  # 10: R4 exists in another area
]
CSV_TEXT = HEADER + "\n".join(ROWS) + "\n"


def test_id_number_checksum() -> None:
    assert id_number_ok(GOOD_ID)
    assert id_number_ok("11010119350505003X") and id_number_ok("11010119350505003x")
    assert not id_number_ok("110101194101010011")
    assert not id_number_ok("110101194102300012")  # 30 February


def _post(client: TestClient, csrf: str, *, dry_run: bool, text: str = CSV_TEXT) -> dict:  # type: ignore[type-arg]
    r = client.post(
        f"/api/elders/import?dry_run={'true' if dry_run else 'false'}",
        files={"file": ("residents.csv", text.encode("utf-8"), "text/csv")},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_dry_run_reports_every_bad_row_and_imports_nothing(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    report = _post(client, csrf, dry_run=True)
    assert report["dry_run"] is True and report["accepted"] == ["R10"]
    errors = {(e["line"], e["field"]) for e in report["errors"]}
    assert errors == {
        (3, "id_number"),
        (4, "phone"),
        (4, "ability_level"),
        (5, "grid"),
        (6, "categories"),
        (6, "consent"),
        (7, "id_number"),
        (8, "id"),
        (9, ""),
        (10, "id"),
    }
    assert "孤寡" in next(e["reason"] for e in report["errors"] if e["field"] == "categories")
    assert backend.get_resident(Scope("all"), "R10") is None
    assert backend.get_resident(Scope("all"), "R4") is not None


def test_import_keeps_good_rows(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    report = _post(client, csrf, dry_run=False)
    assert report["accepted"] == ["R10"] and len(report["errors"]) == 10
    r10 = backend.get_resident(Scope("all"), "R10")
    assert r10 is not None and r10.place.grid == "G01" and r10.ability_level == 2
    assert r10.categories == ("独居", "高龄", "重点关注")
    assert r10.contacts[0].phone == "13722223333"
    r4 = backend.get_resident(Scope("all"), "R4")
    assert r4 is not None and r4.name == "杨淑华"  # another area's resident was not overwritten
    assert "R10" in {e["id"] for e in client.get("/api/elders").json()}
    assert any(e.action == "registry.csv_imported" for e in backend.audit_log())


def test_missing_columns_and_permissions(client: TestClient) -> None:
    csrf = login(client, "W_C1")
    report = _post(client, csrf, dry_run=True, text="编号,姓名\nR1,x\n")
    assert {e["field"] for e in report["errors"]} == {"id_number", "site", "grid", "address"}
    csrf = login(client, "W_G1")
    r = client.post("/api/elders/import", files={"file": ("a.csv", b"x", "text/csv")}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_import_page_shows_errors(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    r = client.post(
        "/registry/import",
        data={"csrf": csrf, "dry_run": "true"},
        files={"file": ("residents.csv", CSV_TEXT.encode("gb18030"), "text/csv")},
    )
    assert r.status_code == 200
    assert 'data-accepted="1" data-errors="10"' in r.text and "身份证号校验失败" in r.text
    assert backend.get_resident(Scope("all"), "R10") is None


def test_export_is_scoped_and_masked(client: TestClient) -> None:
    login(client, "W_C1")
    r = client.get("/api/elders/export.csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][0] == "编号" and [row[0] for row in rows[1:]] == ["R1", "R2"]
    assert rows[1][4] == "1101**********0024" and rows[1][5] == "139****0001"
    assert IDS["R1"] not in r.text


def _export(client: TestClient) -> list[list[str]]:
    r = client.get("/api/elders/export.csv")
    assert r.status_code == 200
    return list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def test_reimported_export_keeps_stored_values_for_masked_fields(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    rows = _export(client)
    assert rows[1][4].count("*") == 10 and rows[1][5] == "139****0001" and rows[1][13] == "137****0001"
    rows[1][1] = "张桂英（改）"  # a real edit alongside the masked columns
    rows[2][6] = "空巢、高龄"
    report = _post(client, csrf, dry_run=False, text=_csv(rows))
    assert report["errors"] == [] and report["accepted"] == ["R1", "R2"]
    # Every masked value is reported, per row and column, not silently replaced.
    assert {(n["line"], n["field"]) for n in report["notices"]} == {
        (line, f) for line in (2, 3) for f in ("id_number", "phone", "contact_phone")
    }
    assert all("保留" in n["reason"] for n in report["notices"])
    r1 = backend.get_resident(Scope("all"), "R1")
    r2 = backend.get_resident(Scope("all"), "R2")
    assert r1 is not None and r2 is not None
    assert (r1.name, r1.id_number, r1.phone, r1.contacts[0].phone) == (
        "张桂英（改）", IDS["R1"], "13900000001", "13700000001",
    )  # fmt: skip
    assert r2.id_number == IDS["R2"] and r2.categories == ("空巢", "高龄")
    entry = next(e for e in backend.audit_log() if e.action == "registry.csv_imported")
    assert entry.detail["kept_stored"] == "6"


def test_masked_values_without_a_matching_stored_value_reject_the_row(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    rows = _export(client)
    new = list(rows[1])
    new[0], new[8] = "R30", "h30"  # a new resident carrying R1's masked numbers: nothing to keep
    rows[2][4] = "1101**********9999"  # R2's ID masked, but not R2's ID: someone edited the mask
    rows.append(new)
    report = _post(client, csrf, dry_run=True, text=_csv(rows))
    assert report["accepted"] == ["R1"]
    errors = {(e["line"], e["field"]) for e in report["errors"]}
    assert errors == {(3, "id_number"), (4, "id_number"), (4, "phone"), (4, "contact_phone")}
    assert "请填写完整号码" in report["errors"][0]["reason"]
    assert {n["line"] for n in report["notices"]} == {2}  # rejected rows carry errors, not notices
    report = _post(client, csrf, dry_run=False, text=_csv(rows))
    assert report["accepted"] == ["R1"]
    assert backend.get_resident(Scope("all"), "R30") is None
    r2 = backend.get_resident(Scope("all"), "R2")
    assert r2 is not None and r2.id_number == IDS["R2"]


def test_import_page_lists_masked_notices(client: TestClient, backend: Backend) -> None:
    csrf = login(client, "W_C1")
    r = client.post(
        "/registry/import",
        data={"csrf": csrf, "dry_run": "true"},
        files={"file": ("residents.csv", _csv(_export(client)).encode("utf-8"), "text/csv")},
    )
    assert r.status_code == 200
    assert 'data-accepted="2" data-errors="0"' in r.text and "保留系统中已有的号码" in r.text
