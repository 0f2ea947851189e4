"""Notifications through apprise (SMS gateways, WeCom, DingTalk, email, JSON webhooks) and their templates.

Each worker has channels as apprise URLs. Messages are Chinese by default (``lang="en"`` for English) and
carry the elder's name, the address, the alert, its explanation and a signed one-tap link.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from enum import StrEnum
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import apprise
import msgspec

from alerts.labels import ALERT_TYPES, SEVERITIES, label
from alerts.privacy import mask_contact
from detection.models import AlertType, Severity

_LOG = logging.getLogger(__name__)


class NoticeKind(StrEnum):
    """Why a notification was sent."""

    INITIAL = "initial"
    REPEAT = "repeat"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    OVERDUE = "overdue"
    DEFERRED = "deferred"
    """Waiting for a batch window or the morning digest."""
    ASSIGNED = "assigned"
    """A duty officer made the recipient responsible for the alert."""
    DIGEST = "digest"
    ARC_FAILED = "arc_failed"
    """The alarm-receiving centre did not take a life-safety alert: whoever has it must act without the ARC."""


KIND_ZH: Final[dict[NoticeKind, str]] = {
    NoticeKind.INITIAL: "",
    NoticeKind.REPEAT: "（再次触发）",
    NoticeKind.REMINDER: "（提醒：尚无人接单）",
    NoticeKind.ESCALATION: "（升级：超时未接单）",
    NoticeKind.OVERDUE: "（超时：尚未到场）",
    NoticeKind.DEFERRED: "",
    NoticeKind.ASSIGNED: "（已指派给您）",
    NoticeKind.DIGEST: "",
    NoticeKind.ARC_FAILED: "（报警中心未收到）",
}


class AlertView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a message template needs about one alert."""

    alert_id: int
    type: AlertType
    severity: Severity
    raised_ms: int
    count: int
    state: str
    explanation: str
    explanation_zh: str
    site: str
    address: str
    community: str
    resident_name: str


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A rendered notification."""

    title: str
    body: str


def _local(time_ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, tz=ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def render_alert(
    view: AlertView,
    *,
    kind: NoticeKind,
    ack_url: str | None,
    page_url: str | None,
    link_ttl_s: int,
    lang: str = "zh",
    tz: str = "Asia/Shanghai",
) -> Message:
    """Render one alert notification (Chinese by default)."""
    who = view.resident_name or view.site
    name = label(ALERT_TYPES, view.type, lang)
    if lang == "en":
        # The links open the page in English too: a phone's fresh browser has no language cookie (zh by default).
        ack_url, page_url = (f"{u}?lang=en" if u else u for u in (ack_url, page_url))
        title = f"[{label(SEVERITIES, view.severity, lang).upper()}] {name} - {who}"
        lines = [
            f"{who}, {view.address} ({view.community})",
            f"Alert: {name} ({kind.value}), #{view.alert_id}, seen {view.count}x",
            f"Time: {_local(view.raised_ms, tz)} ({tz})",
            f"Why: {view.explanation}",
        ]
        if kind is NoticeKind.ARC_FAILED:
            lines.append("Alarm centre: delivery FAILED; the ARC does not have this alert. Act without it.")
        if ack_url:
            lines.append(f"Acknowledge: {ack_url}")
        if page_url:
            lines.append(f"Open: {page_url} (valid {link_ttl_s // 60} min)")
        return Message(title=title, body="\n".join(lines))
    title = f"【{label(SEVERITIES, view.severity, lang)}】{who} {name}{KIND_ZH[kind]}"
    lines = [
        f"老人：{who}",
        f"地址：{view.community} {view.address}",
        f"告警：{name}（编号 {view.alert_id}，累计 {view.count} 次）",
        f"时间：{_local(view.raised_ms, tz)}（北京时间）",
        f"说明：{view.explanation_zh}",
    ]
    if kind is NoticeKind.ARC_FAILED:
        lines.append("报警中心：投递失败，报警中心没有收到此告警，请直接处置。")
    if ack_url:
        lines.append(f"一键接单：{ack_url}")
    if page_url:
        # A space after the link: chat apps and terminals would otherwise take the full-width bracket into the URL.
        lines.append(f"处理页面：{page_url} （{link_ttl_s // 60} 分钟内有效）")
    return Message(title=title, body="\n".join(lines))


def render_digest(
    items: list[AlertView], *, page_urls: list[str | None], tz: str = "Asia/Shanghai", lang: str = "zh"
) -> Message:
    """One message summarising several low-priority alerts (batch window or morning digest), in ``lang``."""
    lines = [f"{len(items)} low-priority reminders:" if lang == "en" else f"共 {len(items)} 条低优先级提醒："]
    for n, (view, url) in enumerate(zip(items, page_urls, strict=True), start=1):
        who, name = view.resident_name or view.site, label(ALERT_TYPES, view.type, lang)
        if lang == "en":
            line = f"{n}. {_local(view.raised_ms, tz)} {who} ({view.address}) {name}: {view.explanation}"
            url = f"{url}?lang=en" if url else url  # the page opens in English, as for a single alert
        else:
            line = f"{n}. {_local(view.raised_ms, tz)} {who}（{view.address}）{name}：{view.explanation_zh}"
        lines.append(line + (f" {url}" if url else ""))
    title = f"[Summary] {len(items)} reminders" if lang == "en" else f"【汇总】{len(items)} 条提醒"
    return Message(title=title, body="\n".join(lines))


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """Result of sending to one channel."""

    ok: bool
    channel: str
    """URL scheme (json, mailto, dingtalk, wecombot, ...)."""
    target: str
    """The URL with secrets hidden (apprise privacy mode), safe to store."""
    error: str | None = None


class Notifier(Protocol):
    """Sends one message to one channel URL."""

    async def send(self, *, url: str, message: Message) -> Delivery:
        """Deliver and report; never raise for delivery failures."""
        ...


@functools.lru_cache(maxsize=4096)
def describe_url(url: str) -> tuple[str, str]:
    """``(scheme, privacy_url)`` of an apprise URL; secrets are hidden."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "invalid"
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if not plugin:
        return scheme, f"{scheme}://?"
    return scheme, str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]


class AppriseNotifier:
    """The production :class:`Notifier`: one apprise call per channel so each delivery is recorded separately."""

    def __init__(self, *, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    async def send(self, *, url: str, message: Message) -> Delivery:
        """Deliver through apprise."""
        scheme, target = describe_url(url)
        ap = apprise.Apprise()
        if not ap.add(url):
            return Delivery(ok=False, channel=scheme, target=target, error="unsupported or malformed channel URL")
        try:
            ok = bool(await ap.async_notify(body=message.body, title=message.title))
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not stop the other channels
            _LOG.warning("notification to %s raised %s", mask_contact(target), type(exc).__name__)
            return Delivery(ok=False, channel=scheme, target=target, error=f"{type(exc).__name__}: {exc}"[:300])
        return Delivery(ok=ok, channel=scheme, target=target, error=None if ok else "channel refused the message")
