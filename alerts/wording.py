"""An alert's explanation in people's words: the device named by its kind and room instead of its id.

The detectors write the device id into the explanation ("Wristband band1 detected a fall", "设备 pir1（motion）自
08:10 起…"); a grid worker does not know which device ``pir1`` is, but does know the bedroom. The stored text stays
as the detector wrote it (audit, replay and the evaluation read it); the pages (``dashboards/web/explain.py``, with
the id in a tooltip) and the notifications (:mod:`alerts.notify`) rewrite it from the home's registered devices:
the id gives way to the room (``Wristband (bedroom) detected a fall``), or disappears where the sentence already
names the room (``Smoke alarm in the kitchen``); a raw kind value (``motion``) becomes the kind's name.
"""

from __future__ import annotations

import re

from alerts.labels import DEVICE_KINDS, Lang, label
from gateway.rooms import room_label

# Where an id starts and ends: not inside a longer id (ASCII, because a Chinese sentence runs on without a space).
_START = r"(?<![A-Za-z0-9_.\-])"
_END = r"(?![A-Za-z0-9_\-])"


def sentence_case(text: str) -> str:
    """``text`` with a capital first letter, for a name that heads a page or a card (English headings: sentence case).

    The catalogue's names are lower case to sit inside a sentence: "fall (suspected)" in a notification,
    "Fall (suspected)" as a heading.

    >>> sentence_case("fall (suspected)"), sentence_case("SOS"), sentence_case("疑似跌倒")
    ('Fall (suspected)', 'SOS', '疑似跌倒')
    """
    return text[:1].upper() + text[1:]


def device_words(text: str, *, device: str, kind: str, room: str | None, lang: Lang) -> tuple[list[str], str]:
    """``text`` split where the device id stood, and the words that take its place.

    The words are the room ("（卧室）", " (bedroom)"), or nothing where the sentence names the room already or the
    device has none.

    >>> device_words("motion pir1 silent for 45 min.", device="pir1", kind="motion", room="bedroom", lang="en")
    (['Motion sensor', ' silent for 45 min.'], ' (bedroom)')
    >>> device_words("设备 pir1（motion）自 08:10 起已 45分钟 无消息。", device="pir1", kind="motion", room="bedroom",
    ...              lang="zh")
    (['人体感应', '自 08:10 起已 45分钟 无消息。'], '（卧室）')
    """
    zh = lang == "zh"
    raw_kind = re.escape(kind)
    ident = re.escape(device)
    name = label(DEVICE_KINDS, kind, lang)
    if re.match(rf"\s*{ident}{_END}", text):  # "mat1 silent…": the sentence starts with the id, the kind goes first
        text = f"{name} {text.lstrip()}"
    # The offline detector names the kind by its raw value: "motion pir1", "设备 pir1（motion）".
    if zh:
        text = re.sub(rf"设备\s*({ident})\s*（{raw_kind}）", rf"{name} \1", text)
    else:
        text = re.sub(rf"{_START}{raw_kind} ({ident}){_END}", rf"{name} \1", text)
        text = sentence_case(text)
    where = room_label(room, lang) if room else ""
    said = bool(where) and where.casefold() in text.casefold()  # "Smoke alarm band1 in the kitchen": said already
    ref = "" if not where or said else (f"（{where}）" if zh else f" ({where})")
    parts = re.split(rf"\s*{_START}{ident}{_END}" + (r"\s*" if zh else ""), text)
    return parts, ref


def plain_explanation(text: str, *, device: str | None, kind: str | None, room: str | None, lang: Lang) -> str:
    """The explanation as a notification says it: the device's kind and room instead of its id.

    ``text`` stays as it is when the alert names no registered device.

    >>> plain_explanation("Wristband band1 detected a fall", device="band1", kind="wristband", room=None, lang="en")
    'Wristband detected a fall'
    >>> plain_explanation("mat1 silent for 3 cadences", device="mat1", kind="mattress", room="bedroom", lang="en")
    'Mattress (bedroom) silent for 3 cadences'
    """
    if not device or not kind:
        return text
    parts, ref = device_words(text, device=device, kind=kind, room=room, lang=lang)
    return ref.join(parts)
