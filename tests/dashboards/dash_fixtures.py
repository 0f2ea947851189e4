"""A small known district for the dashboard tests: 2 streets, 3 communities, 4 grids, one worker per role."""

from __future__ import annotations

from typing import Any

PASSWORD = "correct horse 42"

IDS = {
    "R1": "110101194001010024",
    "R2": "110101193505050031",
    "R3": "110101194212120047",
    "R4": "110101193808080052",
}


def _site(site: str, grid: str, rid: str, name: str, cats: list[str], level: int) -> dict[str, Any]:
    return {
        "site": site,
        "gateway": f"gw-{site}",
        "grid": grid,
        "address": f"{name}家 {site} 号",
        "devices": [
            {"device": "mat1", "kind": "mattress", "room": "bedroom"},
            {"device": "btn1", "kind": "call_button", "room": "bedroom"},
            {"device": "door1", "kind": "door", "room": "entrance"},
        ],
        "residents": [
            {
                "id": rid,
                "name": name,
                "gender": "F",
                "birth_year": 1940,
                "id_number": IDS[rid],
                "phone": f"1390000000{rid[-1]}",
                "categories": cats,
                "ability_level": level,
                "emergency_contacts": [{"name": f"{name[0]}明", "relation": "子女", "phone": f"1370000000{rid[-1]}"}],
                "consent": True,
            }
        ],
    }


def registry() -> dict[str, Any]:
    """D01 → S01 (C01: G01, G02; C02: G03), S02 (C03: G04)."""
    return {
        "version": 1,
        "district": {"id": "D01", "name": "示范区"},
        "streets": [
            {"id": "S01", "name": "东城街道", "district": "D01"},
            {"id": "S02", "name": "西城街道", "district": "D01"},
        ],
        "communities": [
            {"id": "C01", "name": "幸福社区", "street": "S01"},
            {"id": "C02", "name": "和平社区", "street": "S01"},
            {"id": "C03", "name": "长寿社区", "street": "S02"},
        ],
        "grids": [
            {"id": "G01", "name": "第一网格", "community": "C01"},
            {"id": "G02", "name": "第二网格", "community": "C01"},
            {"id": "G03", "name": "第三网格", "community": "C02"},
            {"id": "G04", "name": "第四网格", "community": "C03"},
        ],
        "workers": [
            {"id": "admin", "name": "管理员", "role": "admin", "scope": "", "phone": "13800000000"},
            {"id": "W_D", "name": "区值班", "role": "district", "scope": "D01", "phone": "13800000009"},
            {"id": "W_S1", "name": "东城值班", "role": "street", "scope": "S01", "phone": "13800000008"},
            {"id": "W_C1", "name": "王值班", "role": "community_duty", "scope": "C01", "phone": "13800000002"},
            {"id": "W_G1", "name": "李网格", "role": "grid_worker", "scope": "G01", "phone": "13800000001"},
            {"id": "W_G2", "name": "赵网格", "role": "grid_worker", "scope": "G02", "phone": "13800000003"},
            {"id": "W_G4", "name": "钱网格", "role": "grid_worker", "scope": "G04", "phone": "13800000004"},
        ],
        "sites": [
            _site("h1", "G01", "R1", "张桂英", ["独居", "高龄"], 1),
            _site("h2", "G02", "R2", "刘秀兰", ["空巢"], 2),
            _site("h3", "G03", "R3", "陈玉珍", ["失能", "低保"], 3),
            _site("h4", "G04", "R4", "杨淑华", ["独居", "失智"], 2),
        ],
    }


VISIBLE = {
    "admin": {"R1", "R2", "R3", "R4"},
    "W_D": {"R1", "R2", "R3", "R4"},
    "W_S1": {"R1", "R2", "R3"},
    "W_C1": {"R1", "R2"},
    "W_G1": {"R1"},
    "W_G2": {"R2"},
    "W_G4": {"R4"},
}
"""Who sees which resident: the expected scoping of every role."""
