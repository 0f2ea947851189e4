"""Device status: low battery and tamper, from heartbeats (and the wristband's telemetry battery)."""

from __future__ import annotations

from typing import ClassVar

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import HomeState
from gateway.models import KIND_NAMES, DeviceKind, MessageType, Reading


class DeviceStatusDetector(Detector):
    """LOW_BATTERY at ``battery_low_pct`` (or ``battery_low`` without a percentage); TAMPER while tampered."""

    name: ClassVar[str] = "device_status"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {(k, MessageType.STATUS) for k in DeviceKind if k is not DeviceKind.GATEWAY}
        | {(DeviceKind.WRISTBAND, MessageType.TELEMETRY)}
    )

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Battery hysteresis and tamper state."""
        dev = home.devices.get(r.device)
        if dev is None:
            return
        c = self.config
        zh, en = KIND_NAMES[r.kind]
        battery = r.fields.get("battery")
        if battery is not None:
            pct = int(battery)
            if pct <= c.battery_low_pct and not dev.low_battery:
                self._battery_low(
                    ctx,
                    home,
                    r,
                    t,
                    f"Battery of {en} {r.device} at {pct} % (≤ {c.battery_low_pct} %); replace soon.",
                    f"{zh} {r.device} 电量 {pct}%（不高于 {c.battery_low_pct}%），请尽快更换电池。",
                    {"battery": pct, "limit": c.battery_low_pct},
                )
            elif pct >= c.battery_clear_pct and dev.low_battery:
                self._battery_back(ctx, home, r, t, f"at {pct} %", f"电量已恢复至 {pct}%")
        else:
            # Devices without a percentage (IAS zones through Zigbee2MQTT: `battery_low`) say low / not low.
            flag = r.fields.get("battery_low")
            if flag is True and not dev.low_battery:
                self._battery_low(
                    ctx,
                    home,
                    r,
                    t,
                    f"{en.capitalize()} {r.device} reports a low battery (no percentage given); replace soon.",
                    f"{zh} {r.device} 上报电量低（设备不报告百分比），请尽快更换电池。",
                    {"battery_low": True},
                )
            elif flag is False and dev.low_battery:
                self._battery_back(ctx, home, r, t, "no longer reported low", "不再上报电量低")
        tamper = r.fields.get("tamper")
        if tamper is True and not dev.tamper:
            dev.tamper = True
            ctx.emit(
                home,
                AlertType.TAMPER,
                Severity.WARNING,
                t,
                f"{en.capitalize()} {r.device} reports tampering (cover opened or removed from its mount).",
                f"{zh} {r.device} 上报防拆报警（外壳被打开或被拆下）。",
                device=r.device,
                evidence={"tamper": True},
                key=f"tamper:{r.device}",
            )
        elif tamper is False and dev.tamper:
            dev.tamper = False
            ctx.clear(
                home,
                f"tamper:{r.device}",
                AlertType.TAMPER,
                t,
                f"{r.device} tamper cleared.",
                f"设备 {r.device} 防拆报警解除。",
                device=r.device,
            )

    @staticmethod
    def _battery_low(
        ctx: Context,
        home: HomeState,
        r: Reading,
        t: int,
        en: str,
        zh: str,
        evidence: dict[str, float | int | str | bool],
    ) -> None:
        home.devices[r.device].low_battery = True
        ctx.emit(
            home,
            AlertType.LOW_BATTERY,
            Severity.INFO,
            t,
            en,
            zh,
            device=r.device,
            evidence=evidence,
            key=f"battery:{r.device}",
        )

    @staticmethod
    def _battery_back(ctx: Context, home: HomeState, r: Reading, t: int, en: str, zh: str) -> None:
        dev = home.devices[r.device]
        dev.low_battery = False
        ctx.clear(
            home,
            f"battery:{r.device}",
            AlertType.LOW_BATTERY,
            t,
            f"Battery of {r.device} {en}.",
            f"设备 {r.device} {zh}。",
            device=r.device,
        )
