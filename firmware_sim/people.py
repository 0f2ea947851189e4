"""Synthetic people and places: profiles, Chinese names, addresses, ID and phone numbers, and the registry.

Everything is drawn from seeded numpy generators, so the same seed gives the same registry.
ID numbers follow GB 11643-1999 (18 digits, ISO 7064 MOD 11-2 check digit) but use a fictional
area code; phone numbers use real mobile prefixes with random subscriber digits.
"""

from __future__ import annotations

import dataclasses
from typing import Final

import numpy as np

from firmware_sim.models import GAS_DEVICE, HomeSpec, Mix, Profile

SURNAMES: Final = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN_F: Final = [
    "桂英",
    "秀英",
    "秀兰",
    "玉兰",
    "桂兰",
    "淑珍",
    "凤英",
    "玉珍",
    "素珍",
    "秀珍",
    "淑兰",
    "翠兰",
    "桂珍",
    "玉梅",
    "秀云",
    "凤兰",
    "金凤",
    "兰英",
    "淑英",
    "月英",
    "玉英",
    "桂芳",
    "秀芝",
    "美兰",
    "慧敏",
    "丽华",
    "建华",
    "桂香",
]
GIVEN_M: Final = [
    "建国",
    "国强",
    "建华",
    "志强",
    "德明",
    "福生",
    "永和",
    "国庆",
    "建军",
    "振华",
    "文华",
    "玉林",
    "长福",
    "金山",
    "家明",
    "宝山",
    "德福",
    "树林",
    "有才",
    "春生",
    "国华",
    "卫国",
    "志明",
    "成林",
    "海生",
    "庆丰",
    "学文",
    "守义",
]
RELATIONS: Final = ("子女", "子女", "子女", "配偶", "侄甥", "邻居")
MOBILE_PREFIXES: Final = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155")
MOBILE_PREFIXES_2: Final = ("156", "158", "159", "176", "177", "180", "181", "186", "187", "188", "189", "199")
AREA_CODE: Final = "330106"
"""Area part of the synthetic ID numbers (a 浙江省杭州市 district code, used only as a well-formed example)."""

DISTRICT: Final = {"id": "D01", "name": "临江区"}
STREETS: Final = (("S01", "东城街道"), ("S02", "西湖街道"))
COMMUNITY_NAMES: Final = (
    "幸福社区",
    "和平社区",
    "光明社区",
    "新华社区",
    "长青社区",
    "友谊社区",
    "康乐社区",
    "翠苑社区",
)
ROADS: Final = ("幸福路", "解放路", "人民路", "建设路", "和平路", "中山路", "文化路", "朝阳路", "长寿路", "翠苑路")

_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK: Final = "10X98765432"


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit resident ID number.

    >>> id_check_digit("11010519491231002")
    'X'
    """
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_number(*, birth_year: int, month: int, day: int, serial: int, female: bool) -> str:
    """Well-formed 18-digit ID number: area, birth date, serial (odd for men, even for women), check digit."""
    seq = serial % 500 * 2 + (0 if female else 1)
    first17 = f"{AREA_CODE}{birth_year:04d}{month:02d}{day:02d}{seq:03d}"
    return first17 + id_check_digit(first17)


def phone_number(rng: np.random.Generator) -> str:
    """A mainland mobile number (11 digits, real prefix, random subscriber part)."""
    prefixes = MOBILE_PREFIXES + MOBILE_PREFIXES_2
    return prefixes[int(rng.integers(len(prefixes)))] + f"{int(rng.integers(0, 100_000_000)):08d}"


def chinese_name(rng: np.random.Generator, *, female: bool) -> str:
    """A common surname plus a given name typical of people born in the 1930s–1950s."""
    given = GIVEN_F if female else GIVEN_M
    return SURNAMES[int(rng.integers(len(SURNAMES)))] + given[int(rng.integers(len(given)))]


def draw_profile(rng: np.random.Generator, *, mix: Mix) -> Profile:
    """Draw an elder's profile and routine parameters (individual levels; daily variance comes later)."""
    age = int(np.clip(rng.normal(79, 7), 65, 99))
    female = bool(rng.random() < 0.6)
    bedbound = bool(rng.random() < (0.08 if age < 85 else 0.18))
    dementia = bool(rng.random() < (0.15 if mix is Mix.INCIDENT_RICH else 0.08))
    living = "alone" if rng.random() < 0.75 else "couple"
    rest_hr = float(np.clip(rng.normal(68, 7), 52, 88))
    profile = Profile(
        age=age,
        gender="F" if female else "M",
        living=living,
        bedbound=bedbound,
        dementia=dementia,
        wake_min=float(np.clip(rng.normal(6.3 * 60, 35), 4.75 * 60, 8.5 * 60)),
        wake_sd=float(rng.uniform(20, 45)),
        bed_min=float(np.clip(rng.normal(21.4 * 60, 35), 19.75 * 60, 23.5 * 60)),
        bed_sd=float(rng.uniform(15, 45)),
        toilet_rate=float(rng.uniform(0.4, 2.2)),
        nap_prob=float(rng.uniform(0.3, 0.9)),
        outing_prob=0.0 if bedbound else float(rng.uniform(0.5, 1.0)),
        visitor_prob=float(rng.uniform(0.1, 0.4)) + (0.6 if bedbound else 0.0),
        rest_hr=rest_hr,
        rest_rr=float(np.clip(rng.normal(16, 1.5), 12, 20)),
        band_off_at_night=bool(rng.random() < 0.55),
    )
    # Calibrated on the real development set (docs/simulator.md, "Realism"); drawn last so the draws above keep
    # their place in the stream.
    return dataclasses.replace(
        profile,
        lie_in_prob=float(rng.uniform(0.05, 0.2)),
        sit_break_min=float(rng.uniform(40, 100)),
        chair_nap_prob=float(rng.uniform(0.0, 0.6)),
    )


STANDARD_DEVICES: Final[dict[str, str]] = {
    "mattress": "mat1",
    "wristband": "band1",
    "door": "door1",
    "smoke": "smoke1",
    "call_button": "btn1",
    "motion": "pir1",
}
DEVICE_ROOMS: Final[dict[str, str | None]] = {
    "mattress": "bedroom",
    "wristband": None,
    "door": "entrance",
    "smoke": "kitchen",
    "call_button": "bedroom",
    "motion": "living",
}


def site_id(index: int, homes: int, prefix: str = "h") -> str:
    """Site id of home ``index`` (0-based): ``h0001`` …, wider when there are 10,000+ homes."""
    return f"{prefix}{index + 1:0{max(4, len(str(homes)))}d}"


class RegistryBuilder:
    """Builds the hierarchy and the registry (docs/registry.md, version 1) for a list of homes."""

    def __init__(self, *, homes: int, seed: int) -> None:
        self.homes = homes
        self.rng = np.random.Generator(np.random.PCG64([seed, 0xE1DE, 1]))
        per_grid = 45
        self.n_grids = max(1, -(-homes // per_grid))
        self.n_communities = max(1, min(len(COMMUNITY_NAMES) * 4, -(-self.n_grids // 3)))

    def grid_of(self, index: int) -> str:
        """Grid id a home belongs to (homes are filled grid by grid)."""
        return f"G{index * self.n_grids // self.homes + 1:02d}"

    def _community_of_grid(self, g: int) -> int:
        return g * self.n_communities // self.n_grids

    def build(self, specs: list[HomeSpec]) -> dict[str, object]:
        """The registry JSON document for ``specs`` (same seed, same document)."""
        rng = self.rng
        streets = [{"id": sid, "name": name, "district": DISTRICT["id"]} for sid, name in STREETS]
        communities = []
        for c in range(self.n_communities):
            suffix = "" if c < len(COMMUNITY_NAMES) else str(c // len(COMMUNITY_NAMES) + 1)
            communities.append(
                {
                    "id": f"C{c + 1:02d}",
                    "name": COMMUNITY_NAMES[c % len(COMMUNITY_NAMES)].replace("社区", f"{suffix}社区"),
                    "street": STREETS[c * len(STREETS) // self.n_communities][0],
                }
            )
        numerals = "一二三四五六七八九十"
        grids = []
        for g in range(self.n_grids):
            label = numerals[g] if g < 10 else str(g + 1)
            grids.append(
                {"id": f"G{g + 1:02d}", "name": f"第{label}网格", "community": f"C{self._community_of_grid(g) + 1:02d}"}
            )
        workers: list[dict[str, object]] = []
        for g in range(self.n_grids):
            workers.append(
                {
                    "id": f"W{len(workers) + 1:03d}",
                    "name": chinese_name(rng, female=bool(rng.random() < 0.7)),
                    "role": "grid_worker",
                    "scope": f"G{g + 1:02d}",
                    "phone": phone_number(rng),
                }
            )
        for c in range(self.n_communities):
            workers.append(
                {
                    "id": f"W{len(workers) + 1:03d}",
                    "name": chinese_name(rng, female=bool(rng.random() < 0.6)),
                    "role": "community_duty",
                    "scope": f"C{c + 1:02d}",
                    "phone": phone_number(rng),
                }
            )
        sites = [self._site(spec, rng) for spec in specs]
        return {
            "version": 1,
            "district": dict(DISTRICT),
            "streets": streets,
            "communities": communities,
            "grids": grids,
            "workers": workers,
            "sites": sites,
        }

    def _resident(
        self, rng: np.random.Generator, *, rid: str, surname: str | None, profile: Profile, female: bool, age: int
    ) -> dict[str, object]:
        name = chinese_name(rng, female=female)
        if surname is not None:
            name = surname + name[1:]
        birth_year = 2026 - age
        month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
        child_female = bool(rng.random() < 0.5)
        child = chinese_name(rng, female=child_female)
        relation = RELATIONS[int(rng.integers(len(RELATIONS)))]
        return {
            "id": rid,
            "name": name,
            "gender": "F" if female else "M",
            "birth_year": birth_year,
            "id_number": id_number(
                birth_year=birth_year, month=month, day=day, serial=int(rng.integers(0, 500)), female=female
            ),
            "phone": phone_number(rng),
            "categories": profile.categories,
            "ability_level": profile.ability_level,
            "emergency_contacts": [{"name": child, "relation": relation, "phone": phone_number(rng)}],
            "consent": True,
        }

    def _site(self, spec: HomeSpec, rng: np.random.Generator) -> dict[str, object]:
        p = spec.profile
        road = ROADS[int(rng.integers(len(ROADS)))]
        address = (
            f"{road} {int(rng.integers(1, 300))} 号 {int(rng.integers(1, 20))} 栋 "
            f"{int(rng.integers(1, 4))} 单元 {int(rng.integers(1, 7))}0{int(rng.integers(1, 5))}"
        )
        female = p.gender == "F"
        residents = [
            self._resident(rng, rid=f"R{spec.index + 1:05d}", surname=None, profile=p, female=female, age=p.age)
        ]
        if p.living == "couple":
            spouse_age = int(np.clip(p.age + rng.integers(-5, 6), 60, 99))
            spouse_profile = dataclasses.replace(p, bedbound=False, dementia=False, age=spouse_age)
            residents.append(
                self._resident(
                    rng,
                    rid=f"R{spec.index + 1:05d}b",
                    surname=None,
                    profile=spouse_profile,
                    female=not female,
                    age=spouse_age,
                )
            )
        devices: list[dict[str, object]] = []
        for kind, dev in spec.devices.items():
            entry: dict[str, object] = {"device": dev, "kind": kind}
            room = DEVICE_ROOMS.get(kind)
            if room is not None:
                entry["room"] = room
            devices.append(entry)
        devices.append({"device": GAS_DEVICE, "kind": "gas", "room": "kitchen"})  # rendered from its own streams
        return {
            "site": spec.site,
            "gateway": spec.gateway,
            "grid": spec.grid,
            "address": address,
            "devices": devices,
            "residents": residents,
        }
