"""Home gateway offline: one site-offline incident that mutes the per-device and behavioural alerts it causes.

Triggered by the gateway's Last Will (``online: false``): muted at once, paged if it has not reconnected within
``site_will_grace_s`` (a reboot is not an incident); or by silence of every device of the home
for ``site_offline_after_s`` (only for homes whose gateway has reported at least once). A solitary elder's
home that stays dark is escalated to critical after ``site_escalate_after_s``.
"""

from __future__ import annotations

from typing import ClassVar

from detection.baseline import hhmm
from detection.detectors.base import MIN_MS, Context, Detector, fmt_min, fmt_min_zh
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import EXPECTED_CADENCE_S, DeviceKind, MessageType, Reading

KEY = "site_offline"
SILENCE = "site"
ESCALATE = "site_esc"


class SiteOfflineDetector(Detector):
    """SITE_OFFLINE (warning, then critical for a solitary elder); cleared by the next message from the home."""

    name: ClassVar[str] = "site_offline"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        (k, t) for k in DeviceKind for t in (MessageType.EVENT, MessageType.TELEMETRY, MessageType.STATUS)
    )
    timer_names: ClassVar[tuple[str, ...]] = (SILENCE, ESCALATE)
    held_by_backlog: ClassVar[bool] = False

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Last Will → dark now; any other message → back online (and arm the silence timer)."""
        if r.kind is DeviceKind.GATEWAY:
            home.gateway_seen = True
            if r.fields.get("online") is False:
                if not home.site_offline:
                    # Mute at once (no device-offline storm), page only if it is not a quick reboot.
                    home.site_offline = True
                    home.site_offline_since_ms = t
                    home.silence_armed = True
                    ctx.schedule(home, SILENCE, t + self.config.site_will_grace_s * 1000)
                return
        if home.site_offline:
            self._back(ctx, home, t)
        if home.gateway_seen and not home.silence_armed:
            home.silence_armed = True
            ctx.schedule(home, SILENCE, home.last_seen_ms + self.config.site_offline_after_s * 1000)

    def _go_dark(self, ctx: Context, home: HomeState, t: int, *, will: bool) -> None:
        home.site_offline = False  # emit() mutes site-offline alerts themselves while dark
        ctx.emit(
            home,
            AlertType.SITE_OFFLINE,
            Severity.WARNING,
            t,
            (
                f"The home gateway disconnected at {hhmm(ctx.local_min(home.site_offline_since_ms))} (last will)"
                f" and has not reconnected within {fmt_min(self.config.site_will_grace_s / 60)}"
                if will
                else f"No message from any device of the home for {fmt_min(self.config.site_offline_after_s / 60)}"
                f" (last at {hhmm(ctx.local_min(home.last_seen_ms))})"
            )
            + "; device and inactivity alerts of this home are muted until it is back.",
            (
                f"家庭网关于 {hhmm(ctx.local_min(home.site_offline_since_ms))} 断开（遗嘱消息），"
                f"{fmt_min_zh(self.config.site_will_grace_s / 60)} 内未重连"
                if will
                else f"该户所有设备已 {fmt_min_zh(self.config.site_offline_after_s / 60)} 无任何消息"
                f"（最后一条 {hhmm(ctx.local_min(home.last_seen_ms))}）"
            )
            + "；在恢复前暂停该户的设备与活动类告警。",
            evidence={"will": will, "solitary": home.solitary},
            key=KEY,
        )
        home.site_offline = True
        if not will:
            home.site_offline_since_ms = t
        ctx.cancel(home, SILENCE)
        home.silence_armed = False
        ctx.schedule(home, ESCALATE, home.site_offline_since_ms + self.config.site_escalate_after_s * 1000)

    def _back(self, ctx: Context, home: HomeState, t: int) -> None:
        dark_min = (t - home.site_offline_since_ms) / MIN_MS
        home.site_offline = False
        ctx.cancel(home, ESCALATE)
        ctx.clear(
            home,
            KEY,
            AlertType.SITE_OFFLINE,
            t,
            f"The home is back online after {fmt_min(dark_min)}.",
            f"该户已恢复在线，离线 {fmt_min_zh(dark_min)}。",
        )
        home.open.pop("site_esc", None)
        # Devices could not talk while the gateway was down: give each one a cadence to speak again (a device that
        # was already silent before the outage is called offline then, not a whole limit after the return).
        for name, dev in home.devices.items():
            if dev.kind is not DeviceKind.GATEWAY and not dev.offline:
                dev.settle_ms = t + EXPECTED_CADENCE_S[dev.kind] * 1000 + 10 * 60_000
                ctx.schedule(home, f"off:{name}", t + 60_000)
                dev.offline_armed = True
        # Nothing is known about activity during the outage; restart the inactivity clock conservatively.
        if not home.away and not home.in_bed:
            home.last_activity_ms = max(home.last_activity_ms, t)
            home.last_activity_src = "home back online"
            ctx.schedule(home, "inact", t + 60_000)

    def on_timer(self, ctx: Context, home: HomeState, name: str, due: int) -> None:
        """Silence check (lazy) or escalation of a dark solitary home."""
        if name == SILENCE:
            home.silence_armed = False
            if home.site_offline:
                if KEY not in home.open:
                    self._go_dark(ctx, home, due, will=True)
                return
            real_due = home.last_seen_ms + self.config.site_offline_after_s * 1000
            if real_due > due:
                home.silence_armed = True
                ctx.schedule(home, SILENCE, real_due)
                return
            self._go_dark(ctx, home, due, will=False)
            return
        if not home.site_offline or not home.solitary:
            return
        dark = (due - home.site_offline_since_ms) / MIN_MS
        ctx.emit(
            home,
            AlertType.SITE_OFFLINE,
            Severity.CRITICAL,
            due,
            f"The home of a solitary elder has been dark for {fmt_min(dark)} (since"
            f" {hhmm(ctx.local_min(home.site_offline_since_ms))}): nobody can see whether the elder is safe;"
            " please visit or call.",
            f"独居老人家中设备已离线 {fmt_min_zh(dark)}（自 {hhmm(ctx.local_min(home.site_offline_since_ms))} 起），"
            "无法确认老人是否安全，请上门或电话确认。",
            evidence={"dark_min": round(dark, 1), "solitary": True, "escalated": True},
            key="site_esc",
        )
