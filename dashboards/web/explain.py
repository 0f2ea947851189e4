"""An alert's explanation on a page, the device named by its room and kind (:mod:`alerts.wording`).

Its id is kept for technicians in a tooltip and in the device line under the explanation.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from alerts.views import AlertView, DeviceView, ResidentView
from alerts.wording import device_words
from dashboards.i18n import Translator


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
    parts, ref = device_words(text, device=device.device, kind=device.kind, room=device.room, lang=t.lang)
    tag = Markup('<span class="device-ref" title="{}">{}</span>').format(device.device, ref) if ref else Markup("")
    return tag.join(escape(p) for p in parts)
