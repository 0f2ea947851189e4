"""Abnormal resting vitals trend over days: night heart or breathing rate off the elder's own range for N nights."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import ClassVar

from detection.baseline import DaySummary
from detection.detectors.base import Context, Detector
from detection.models import AlertType, Severity
from detection.state import HomeState

KEY = "vitals_trend"


def _night_hr(d: DaySummary) -> float | None:
    return d.night_hr


def _night_rr(d: DaySummary) -> float | None:
    return d.night_rr


class VitalsTrendDetector(Detector):
    """VITALS_TREND when the last ``trend_nights`` nightly means all lie beyond median ± max(delta, k·MAD)."""

    name: ClassVar[str] = "vitals_trend"

    def trend_score(self, values: list[float], ref: list[float], min_delta: float) -> float:
        """Smallest deviation of recent nights over the band half-width (≥ 1 on every night: anomalous)."""
        med = statistics.median(ref)
        mad = statistics.median(abs(v - med) for v in ref) * 1.4826
        width = max(min_delta, self.config.trend_mads * mad)
        devs = [(v - med) / width for v in values]
        if all(d > 0 for d in devs) or all(d < 0 for d in devs):
            return min(abs(d) for d in devs)
        return 0.0

    def on_day_end(self, ctx: Context, home: HomeState, t: int) -> None:
        """Check the nights just archived against the nights before them."""
        c = self.config
        n = c.trend_nights
        hist = home.history
        if len(hist) < n + c.grace_days:
            return
        recent = hist[-n:]
        past = [d for d in hist[:-n] if not d.flagged]
        metrics: tuple[tuple[str, str, str, str, Callable[[DaySummary], float | None], float], ...] = (
            ("heart rate", "心率", "bpm", "次/分", _night_hr, c.trend_min_delta_hr),
            ("breathing rate", "呼吸频率", "/min", "次/分", _night_rr, c.trend_min_delta_rr),
        )
        for label, label_zh, unit, unit_zh, get, delta in metrics:
            vals = [get(d) for d in recent]
            ref = [v for v in (get(d) for d in past) if v is not None]
            if any(v is None for v in vals) or len(ref) < c.grace_days:
                continue
            values = [float(v) for v in vals if v is not None]
            score = self.trend_score(values, ref, delta)
            if score < 1.0:
                continue
            med = statistics.median(ref)
            mad = statistics.median(abs(v - med) for v in ref) * 1.4826
            width = max(delta, c.trend_mads * mad)
            nights = ", ".join(f"{v:.1f}" for v in values)
            direction, direction_zh = ("above", "高于") if values[0] > med else ("below", "低于")
            if ctx.emit(
                home,
                AlertType.VITALS_TREND,
                Severity.WARNING,
                t,
                f"Resting night {label} {direction} the usual range for {n} nights in a row ({nights} {unit});"
                f" usual median {med:.1f} {unit} over {len(ref)} nights, band ±{width:.1f} {unit}"
                f" (max of {delta:.0f} {unit} and {c.trend_mads:.1f} × robust spread {mad:.1f}).",
                f"连续 {n} 晚夜间静息{label_zh}{direction_zh}平时范围（{nights} {unit_zh}）；"
                f"过去 {len(ref)} 晚中位数 {med:.1f} {unit_zh}，正常范围 ±{width:.1f} {unit_zh}。",
                evidence={
                    "metric": label,
                    "median": round(med, 1),
                    "band": round(width, 1),
                    "last": values[-1],
                    "score": round(score, 2),
                },
                key=KEY,
            ):
                return
        if KEY in home.open and ctx.care_day(t) - ctx.care_day(home.open[KEY]) >= 7:
            home.open.pop(KEY, None)
