"""Critical vitals sustained: heart rate below/above the fixed floors for a minute, low blood oxygen.

Fixed safety floors (not learned): heart rate < 40 or > 130 bpm measured by the mattress while in bed (or by a
worn wristband) for at least ``vitals_sustain_s``, the episode lasting while most samples stay out of range (one
noisy in-range sample does not reset it). An episode whose mean is only mildly out of range (38–40 or
130–140 bpm) must last ``vitals_mild_sustain_s`` instead; SpO2 below ``spo2_low`` on two
consecutive wristband samples. Decided on the reading that completes the minute: synchronous, O(1).
"""

from __future__ import annotations

from typing import ClassVar

from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import NEVER, DeviceState, HomeState
from gateway.models import DeviceKind, MessageType, Reading


class VitalsDetector(Detector):
    """VITALS_CRITICAL when heart rate stays outside [hr_low, hr_high] for a minute, or SpO2 stays low."""

    name: ClassVar[str] = "vitals"
    inputs: ClassVar[frozenset[tuple[DeviceKind, MessageType]]] = frozenset(
        {(DeviceKind.MATTRESS, MessageType.TELEMETRY), (DeviceKind.WRISTBAND, MessageType.TELEMETRY)}
    )

    def hr_score(self, hr: float) -> float:
        """How far outside the fixed band a heart rate is (≥ 1 means outside)."""
        c = self.config
        if hr < c.hr_low:
            return c.hr_low / max(hr, 1.0)
        if hr > c.hr_high:
            return hr / c.hr_high
        return max(hr / c.hr_high, c.hr_low / max(hr, 1.0))

    def on_reading(self, ctx: Context, home: HomeState, r: Reading, t: int, flags: int) -> None:
        """Track consecutive out-of-band samples per device."""
        dev = home.devices.get(r.device)
        if dev is None:
            return
        f = r.fields
        if r.kind is DeviceKind.MATTRESS:
            ok = bool(f.get("occupied"))
        else:
            ok = bool(f.get("worn"))
            spo2 = f.get("spo2")
            if ok and spo2 is not None:
                self._spo2(ctx, home, dev, r.device, float(spo2), t)
            if ok and "hr" not in f:
                # A worn watch's SpO2 or temperature frame carries no heart rate: it neither continues nor ends
                # a heart-rate episode (ending it there hid a sustained 150 bpm between oxygen frames).
                return
        hr = f.get("hr")
        if not ok or not isinstance(hr, int | float) or hr <= 0:
            # The sensor stopped measuring (out of bed, band off): the episode ends without a known recovery, so an
            # open alert stays with the humans (no clear), but the next episode on this device pages again.
            dev.vitals_out_since_ms = NEVER
            if dev.vitals_alerted:
                dev.vitals_alerted = False
                home.open.pop(f"vitals:{r.device}", None)
            return
        c = self.config
        hrv = float(hr)
        if r.kind is DeviceKind.WRISTBAND and hrv < c.hr_low and home.in_bed and self._mattress_reporting(home, t):
            return  # asleep in bed, the mattress (every 10–30 s, less noise) is the low-heart-rate sensor of record
        if c.hr_low <= hrv <= c.hr_high:
            if dev.vitals_out_since_ms == NEVER:
                return
            dev.vitals_n_in += 1
            if dev.vitals_n_in < dev.vitals_n_out:
                return  # one noisy in-range sample does not end an episode; a majority does
            dev.vitals_out_since_ms = NEVER
            if dev.vitals_alerted:
                dev.vitals_alerted = False
                ctx.clear(
                    home,
                    f"vitals:{r.device}",
                    AlertType.VITALS_CRITICAL,
                    t,
                    f"Heart rate back in range ({hrv:.0f} bpm) on {r.device}.",
                    f"{r.device} 心率恢复正常（{hrv:.0f} 次/分）。",
                    device=r.device,
                )
            return
        if dev.vitals_out_since_ms == NEVER:
            dev.vitals_out_since_ms = t
            dev.vitals_n_out = 1
            dev.vitals_n_in = 0
            dev.vitals_sum = hrv
            return
        dev.vitals_n_out += 1
        dev.vitals_sum += hrv
        held = t - dev.vitals_out_since_ms
        mean = dev.vitals_sum / dev.vitals_n_out
        severe = mean < c.hr_low_severe or mean > c.hr_high_severe
        need_s = c.vitals_sustain_s if severe else c.vitals_mild_sustain_s
        b = home.baseline
        if mean < c.hr_low and b.hr_med is not None and r.kind is DeviceKind.MATTRESS:
            width = max(c.mild_band_min_delta, c.mild_band_mads * (b.hr_mad or 0.0))
            if mean >= b.hr_med - width:
                if not severe:
                    return  # mildly below 40 but normal for this elder's sleep (learned band)
                need_s = c.vitals_mild_sustain_s  # below 38 yet within the learned band: must last, still pages
        if held >= need_s * 1000 and dev.vitals_n_out > dev.vitals_n_in and not dev.vitals_alerted:
            dev.vitals_alerted = True
            low = hrv < c.hr_low
            src = "mattress (in bed)" if r.kind is DeviceKind.MATTRESS else "wristband"
            src_zh = "床垫（在床）" if r.kind is DeviceKind.MATTRESS else "手环"
            bound = f"< {c.hr_low:.0f}" if low else f"> {c.hr_high:.0f}"
            ctx.emit(
                home,
                AlertType.VITALS_CRITICAL,
                Severity.CRITICAL,
                t,
                f"Heart rate {hrv:.0f} bpm ({bound} bpm, fixed safety limit) for {held / 1000:.0f} s,"
                f" measured by {src} {r.device} ({dev.vitals_n_out} of {dev.vitals_n_out + dev.vitals_n_in} samples"
                f" out of range, mean {mean:.1f} bpm; required duration {need_s} s"
                + (" because the mean is beyond the severe limit)." if severe else " in the mild zone)."),
                f"心率 {hrv:.0f} 次/分（{'低于' if low else '高于'}固定安全阈值 "
                f"{c.hr_low if low else c.hr_high:.0f} 次/分）已持续 {held / 1000:.0f} 秒"
                f"（平均 {mean:.1f} 次/分），来源：{src_zh} {r.device}。",
                device=r.device,
                evidence={
                    "hr": hrv,
                    "mean_hr": round(mean, 1),
                    "limit": c.hr_low if low else c.hr_high,
                    "held_s": held // 1000,
                    "required_s": need_s,
                },
                key=f"vitals:{r.device}",
            )

    @staticmethod
    def _mattress_reporting(home: HomeState, now_ms: int) -> bool:
        for dev in home.devices.values():
            if dev.kind is DeviceKind.MATTRESS and not dev.offline and now_ms - dev.last_seen_ms <= 120_000:
                return True
        return False

    def _spo2(self, ctx: Context, home: HomeState, dev: DeviceState, device: str, spo2: float, t: int) -> None:
        c = self.config
        if spo2 >= c.spo2_low:
            dev.spo2_low_since_ms = NEVER
            return
        if dev.spo2_low_since_ms == NEVER:
            dev.spo2_low_since_ms = t
            return
        held = t - dev.spo2_low_since_ms
        if held >= c.vitals_sustain_s * 1000:
            ctx.emit(
                home,
                AlertType.VITALS_CRITICAL,
                Severity.CRITICAL,
                t,
                f"Blood oxygen {spo2:.0f} % (< {c.spo2_low:.0f} %, fixed safety limit) for {held / 1000:.0f} s"
                f" on wristband {device}.",
                f"血氧 {spo2:.0f}%（低于固定安全阈值 {c.spo2_low:.0f}%）已持续 {held / 1000:.0f} 秒，手环 {device}。",
                device=device,
                evidence={"spo2": spo2, "limit": c.spo2_low, "held_s": held // 1000},
                key=f"spo2:{device}",
            )
