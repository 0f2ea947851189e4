"""Which behavioural detectors a home's devices can support, and why not (shown on the resident page).

A detector that cannot see what it judges stays off for that home instead of paging on guesses:

- a night bed exit needs a bed sensor (mattress);
- "out and not back" needs the entrance door contact *and* a sensor inside the home: with the door alone, every
  door use looks like a departure (the elder who only fetched the post would be "out" all afternoon);
- a night door needs the entrance door contact;
- unusual inactivity needs a sensor inside the home (motion, bed, or a contact in a room);
- "not up" needs a bed sensor or a sensor outside the bedroom (bedroom motion alone is someone awake in bed).
"""

from __future__ import annotations

from collections.abc import Iterable

from detection.models import AlertType
from gateway.models import DeviceKind

ENTRANCE_ROOMS = frozenset({"entrance"})


def is_entrance(kind: DeviceKind, room: str | None) -> bool:
    """True for the door contact that tells departures (room ``entrance``, or a door without a room)."""
    return kind is DeviceKind.DOOR and (room is None or room in ENTRANCE_ROOMS)


def is_inside(kind: DeviceKind, room: str | None) -> bool:
    """True for a sensor whose firing proves someone is inside: PIR, mattress, a contact in a room."""
    if kind in (DeviceKind.MOTION, DeviceKind.MATTRESS):
        return True
    return kind is DeviceKind.DOOR and not is_entrance(kind, room)


def unsupported(devices: Iterable[tuple[DeviceKind, str | None]]) -> dict[str, str]:
    """Behavioural alert types the devices cannot support, with the reason in English and Chinese.

    >>> sorted(unsupported([(DeviceKind.DOOR, "entrance")]))
    ['inactivity', 'night_bed_exit', 'not_up', 'out_not_back']
    >>> unsupported([(DeviceKind.MATTRESS, "bedroom"), (DeviceKind.DOOR, "entrance"), (DeviceKind.MOTION, "living")])
    {}
    """
    devs = list(devices)
    kinds = {k for k, _ in devs}
    entrance = any(is_entrance(k, r) for k, r in devs)
    inside = any(is_inside(k, r) for k, r in devs)
    outside_bedroom = any(is_inside(k, r) and k is not DeviceKind.MATTRESS and r != "bedroom" for k, r in devs)
    off: dict[str, str] = {}
    if DeviceKind.MATTRESS not in kinds:
        off[AlertType.NIGHT_BED_EXIT.value] = (
            "no bed sensor: a night bed exit cannot be seen / 无床垫：无法判断夜间离床"
        )
    if not entrance:
        off[AlertType.NIGHT_DOOR.value] = "no entrance door contact / 无入户门磁"
        off[AlertType.OUT_NOT_BACK.value] = "no entrance door contact / 无入户门磁"
    elif not inside:
        off[AlertType.OUT_NOT_BACK.value] = (
            "door contact only: every door use would look like a departure / 仅有门磁：无法区分外出与在家"
        )
    if not inside:
        off[AlertType.INACTIVITY.value] = "no sensor inside the home / 室内无传感器"
    if DeviceKind.MATTRESS not in kinds and not outside_bedroom:
        off[AlertType.NOT_UP.value] = (
            "no bed sensor and no sensor outside the bedroom: getting up cannot be seen"
            " / 无床垫且卧室外无传感器：无法判断起床"
        )
    return off
