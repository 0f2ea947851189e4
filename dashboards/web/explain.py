"""An alert's explanation in people's words: the device named by its room and kind, its id kept for technicians.

The detectors write the device id into the explanation ("Wristband band1 detected a fall", "设备 pir1（motion）自
08:10 起…"); a grid worker does not know which device ``pir1`` is, but does know the bedroom. The stored text stays
as the detector wrote it (notifications, audit, replay read it); the pages rewrite it when rendering, from the
home's registered devices: the id gives way to the room (``Wristband (bedroom) detected a fall``), or disappears
where the sentence already names the room (``Smoke alarm in the kitchen``); a raw kind value (``motion``) becomes
the kind's name. The id stays in the tooltip and in the device line under the explanation.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from alerts.views import AlertView, DeviceView, ResidentView
from dashboards.i18n import Translator

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


def alert_device(alert: AlertView, resident: ResidentView | None) -> DeviceView | None:
    """The registered device an alert is about, or None (no device, unknown to the registry, no resident)."""
    if resident is None or not alert.device:
        return None
    return next((d for d in resident.devices if d.device == alert.device), None)


def device_name(device: DeviceView, t: Translator) -> str:
    """A device in words: its kind and room ("卧室 · 智能床垫", "mattress · bedroom"), the kind alone without a room.

    >>> device_name(DeviceView("mat1", "mattress", "bedroom", True), Translator("en"))
    'mattress · bedroom'
    """
    kind = t.kind(device.kind)
    if not device.room:
        return kind
    room = t.room(device.room)
    return f"{room} · {kind}" if t.lang == "zh" else f"{kind} · {room}"


def explanation(alert: AlertView, resident: ResidentView | None, t: Translator) -> Markup:
    """The alert's explanation in the page's language, its device id replaced by the device's room (HTML-safe).

    >>> from alerts.views import Place
    >>> from detection.models import AlertType, Severity
    >>> from alerts.lifecycle import State
    >>> a = AlertView(1, "h1", Place("D", "S", "C", "G"), AlertType.DEVICE_OFFLINE, Severity.WARNING, State.OPEN, 0,
    ...               "motion pir1 silent for 45 min since 08:10.", "设备 pir1（motion）自 08:10 起已 45分钟 无消息。",
    ...               device="pir1")
    >>> r = ResidentView("R1", "x", "F", 1940, "", "", (), 0, True, "h1", "", a.place,
    ...                  devices=(DeviceView("pir1", "motion", "bedroom", True),))
    >>> str(explanation(a, r, Translator("en")))
    'Motion sensor<span class="device-ref" title="pir1"> (bedroom)</span> silent for 45 min since 08:10.'
    >>> str(explanation(a, r, Translator("zh")))
    '人体感应<span class="device-ref" title="pir1">（卧室）</span>自 08:10 起已 45分钟 无消息。'
    """
    text = alert.explanation_zh if t.lang == "zh" else alert.explanation
    device = alert_device(alert, resident)
    if device is None:
        return escape(text)
    zh = t.lang == "zh"
    raw_kind = re.escape(device.kind)
    ident = re.escape(device.device)
    kind = t.kind(device.kind)
    # The offline detector names the kind by its raw value: "motion pir1", "设备 pir1（motion）".
    if zh:
        text = re.sub(rf"设备\s*({ident})\s*（{raw_kind}）", rf"{kind} \1", text)
    else:
        text = re.sub(rf"{_START}{raw_kind} ({ident}){_END}", rf"{kind} \1", text)
        text = sentence_case(text)
    room = t.room(device.room) if device.room else ""
    said = bool(room) and room.casefold() in text.casefold()  # "Smoke alarm band1 in the kitchen": said already
    ref = "" if not room or said else (f"（{room}）" if zh else f" ({room})")
    parts = re.split(rf"\s*{_START}{ident}{_END}" + (r"\s*" if zh else ""), text)
    tag = Markup('<span class="device-ref" title="{}">{}</span>').format(device.device, ref) if ref else Markup("")
    return tag.join(escape(p) for p in parts)
