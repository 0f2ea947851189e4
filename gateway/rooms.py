"""Room names: the few the backend reads, and the many ways installers, gateways and datasets write them.

The detectors give two rooms a meaning: the **bedroom** (motion there is someone awake in bed, not up for the day)
and the **entrance** (a door contact there is the front door: outings, night door). Installers type 主卧 or
"Master Bedroom", datasets say ``Bedroom1``, ``LivingRoom``, ``Front Door``; read literally, none of them was the
bedroom or the entrance, so a stir at 04:42 counted as getting up and the front door became a cupboard. Every room
that enters the backend (a payload's ``room``, a registry's device) goes through :func:`canonical_room` once, at
the boundary; the console translates the canonical names (``room.<name>``).

A name that is none of the known rooms keeps its words (case and separators made uniform, so ``Fridge`` and
``fridge`` are one room): it is still a room of its own for the per-room baselines.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

BEDROOM: Final = "bedroom"
ENTRANCE: Final = "entrance"

_WORDS: Final[dict[str, str]] = {  # each room's names, "|" between them (compared without case and separators)
    BEDROOM: "bedroom|bed room|bed|master bedroom|main bedroom|master|guest bedroom|second bedroom|sleeping room"
    "|sleeping area|卧室|主卧|次卧|卧房|睡房|主卧室|次卧室|老人房",
    "living": "living|living room|lounge|sitting room|family room|front room|parlour|parlor|tv room|den"
    "|客厅|起居室|起居厅",
    "kitchen": "kitchen|kitchenette|cooking area|厨房",
    "bathroom": "bathroom|bath|toilet|wc|restroom|washroom|lavatory|shower|shower room"
    "|卫生间|厕所|浴室|洗手间|盥洗室|卫浴",
    "hall": "hall|hallway|corridor|passage|走廊|过道|走道",
    ENTRANCE: "entrance|entry|entryway|front door|main door|entrance door|door|foyer|porch|vestibule"
    "|门|入户门|大门|门口|玄关|入口|户门|进户门|门厅",
    "dining": "dining|dining room|dining area|餐厅|饭厅",
    "study": "study|office|study room|书房",
    "balcony": "balcony|阳台",
}
NAMES: Final = frozenset(_WORDS)
"""The canonical names themselves (a gateway that already sends them costs one set lookup)."""
_CANONICAL: Final = {w.replace(" ", ""): room for room, words in _WORDS.items() for w in words.split("|")}
_SEPARATORS: Final = re.compile(r"[\s_\-./,:;·()\[\]]+")
_NUMBERED: Final = re.compile(r"(?<=[^\d\s])\s*\d+$")
_DEVICE_WORDS: Final = re.compile(r"(\s*(sensor|contact|pir|motion|detector|magnet|门磁|传感器|感应器|探测器))+$")
_DOOR_WORD: Final = re.compile(r"(?<=\S)\s*(door|门)$")
_PRIORITY: Final = {room: i for i, room in enumerate(_WORDS)}
"""Where a name holds several rooms' words ("Hall-Bedroom door"), the first in :data:`_WORDS` wins."""


def _lookup(words: str) -> str | None:
    return _CANONICAL.get(words.replace(" ", "")) or _CANONICAL.get(_NUMBERED.sub("", words).replace(" ", ""))


@lru_cache(maxsize=4096)  # bounded: a hostile gateway's invented names cannot grow it
def canonical_room(name: str) -> str:
    """The backend's name of a room written as ``name``.

    The whole name first ("Master Bedroom", "Bedroom1"), then without a device word at its end ("Front door
    sensor", "入户门门磁"), then a room's door as the room ("Bathroom door", "卫生间门": a contact on it is not the
    front door), then the most telling room word of a longer name. "Entrance" is never guessed from one word of
    several: only a name that says the front door is the front door.

    >>> [canonical_room(n) for n in ("Master Bedroom", "Bedroom1", "主卧", "LivingRoom", "Front Door", "入户门")]
    ['bedroom', 'bedroom', 'bedroom', 'living', 'entrance', 'entrance']
    >>> [canonical_room(n) for n in ("Front door sensor", "入户门门磁", "门", "Bathroom door", "卫生间门")]
    ['entrance', 'entrance', 'entrance', 'bathroom', 'bathroom']
    >>> canonical_room("Hall-Bedroom door"), canonical_room("Bedroom (elder)"), canonical_room("kitchen cupboard")
    ('bedroom', 'bedroom', 'kitchen')
    >>> canonical_room("Fridge"), canonical_room("Garden shed"), canonical_room("  ")
    ('fridge', 'garden shed', '')
    """
    words = _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()
    bare = _DEVICE_WORDS.sub("", words).strip() or words
    room = _lookup(words) or _lookup(bare)
    if room is None and (doorless := _DOOR_WORD.sub("", bare).strip()) != bare:
        room = _lookup(doorless)
        room = None if room == ENTRANCE else room
    if room is None:
        found = [r for w in bare.split() if (r := _lookup(w)) is not None and r != ENTRANCE]
        room = min(found, key=_PRIORITY.__getitem__) if found else None
    return room if room is not None else words


LABELS: Final[dict[str, tuple[str, str]]] = {
    BEDROOM: ("卧室", "bedroom"),
    "living": ("客厅", "living room"),
    "kitchen": ("厨房", "kitchen"),
    "bathroom": ("卫生间", "bathroom"),
    "hall": ("走廊", "hall"),
    ENTRANCE: ("门口", "entrance"),
    "dining": ("餐厅", "dining room"),
    "study": ("书房", "study"),
    "balcony": ("阳台", "balcony"),
}
"""Each canonical room's name in Chinese and English (the console's and the alerts' explanations)."""


def room_label(room: str, lang: str) -> str:
    """The name of ``room`` in ``lang`` (``zh`` or ``en``); a room of no known kind keeps its own words.

    >>> room_label("bathroom", "zh"), room_label("bathroom", "en"), room_label("wardrobe", "zh")
    ('卫生间', 'bathroom', 'wardrobe')
    """
    names = LABELS.get(room)
    return room if names is None else names[0] if lang == "zh" else names[1]


def where(room: str | None) -> tuple[str, str]:
    """The place of a device for an explanation: (Chinese prefix ``卫生间的``, English ``" in the bathroom"``).

    >>> where("bathroom"), where(None)
    (('卫生间的', ' in the bathroom'), ('', ''))
    """
    if not room:
        return "", ""
    return f"{room_label(room, 'zh')}的", f" in the {room_label(room, 'en')}"


def room_or_none(name: object) -> str | None:
    """:func:`canonical_room` of a room field that may be absent or empty (then None)."""
    if not isinstance(name, str):
        return None
    return canonical_room(name) or None
