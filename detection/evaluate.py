"""``eldercare evaluate``: simulated homes from fixed seeds, replayed through the core, scored against ground truth.

For every run the simulator (:mod:`firmware_sim.scenario`, imported lazily: production code never depends on
it) plans homes and incidents from a seed; the messages go through :func:`detection.replay.run` exactly as a
recording would. Each alert is then classified:

- *true*: its type is expected by a ground-truth incident of the same home (and device, when both name one) and it
  falls inside the incident's window (start − 2 min … end + 5 min); the first such alert detects the incident
  (delay = alert − start);
- *related*: inside an incident window of the same home, not expected but not forbidden (e.g. NOT_UP during a
  night collapse): actionable, not counted either way;
- *false* (non-actionable): forbidden by the incident it falls in, or matching no incident at all.

Expected alerts the ground truth lists as ``undeliverable`` (the evidence never reaches the backend in the window: band
on the charger, smoke detector offline) are not counted as incidents; an alert of that type inside the window is
*related*. Malformed messages (``malformed`` in the ground truth) must be refused with their expected dead-letter
reason; the report compares the counts.

Only alerts that notify count as raised (a merged duplicate pages nobody); ``clears`` messages are ignored, and so
are alerts after the end of the simulated period (late deliveries arrive after it, then every device falls silent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import msgspec
import numpy as np

from detection.config import DetectConfig
from detection.detectors.base import BEHAVIOURAL
from detection.homes import HomeRegistry
from detection.models import LIFE_SAFETY_TYPES, Alert, AlertType
from detection.replay import Message, run

BEFORE_MS: Final = 2 * 60_000
AFTER_MS: Final = 5 * 60_000
LIFE_SAFETY: Final = frozenset(t.value for t in LIFE_SAFETY_TYPES)
BEHAVIOUR: Final = frozenset(t.value for t in BEHAVIOURAL) | {AlertType.APNEA.value}


class Run(msgspec.Struct, frozen=True):
    """One scenario: seed, homes, days, mix."""

    seed: int
    homes: int
    days: int
    mix: str


TEST_RUNS: Final = (
    Run(seed=1, homes=20, days=14, mix="incident-rich"),
    Run(seed=2, homes=20, days=14, mix="device-faulty"),
    Run(seed=3, homes=20, days=14, mix="normal"),
)
"""The modest evaluation (about a minute): one seed per scenario mix."""
FULL_RUNS: Final = (
    Run(seed=11, homes=40, days=28, mix="incident-rich"),
    Run(seed=12, homes=40, days=28, mix="device-faulty"),
    Run(seed=13, homes=60, days=28, mix="realistic"),
)
"""The CLI's default (several minutes): four weeks, so personal baselines leave their grace period."""


class TypeRow(msgspec.Struct, kw_only=True):
    """Per alert type: recall, precision, delay, false alerts per elder-month."""

    type: str
    incidents: int = 0
    detected: int = 0
    raised: int = 0
    true: int = 0
    related: int = 0
    false: int = 0
    delays_min: list[float] = msgspec.field(default_factory=list)

    @property
    def recall(self) -> float | None:
        """Detected / expected incidents."""
        return self.detected / self.incidents if self.incidents else None

    @property
    def precision(self) -> float | None:
        """Actionable / raised alerts."""
        return (self.true + self.related) / self.raised if self.raised else None

    def delay(self, q: float) -> float | None:
        """Detection delay quantile, minutes."""
        return float(np.quantile(self.delays_min, q)) if self.delays_min else None


class EvalReport(msgspec.Struct, kw_only=True):
    """Everything ``eldercare evaluate`` prints and writes to docs/detection.md."""

    runs: list[Run]
    elder_months: float
    rows: dict[str, TypeRow]
    missed: list[dict[str, Any]]
    false_alerts: list[dict[str, Any]]
    messages: int
    seconds: float
    offline_late_s_max: float
    inactivity_late_s_max: float
    undeliverable: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Expected alerts the system cannot raise (ground truth ``undeliverable``): not counted as misses."""
    malformed_expected: dict[str, int] = msgspec.field(default_factory=dict)
    """Malformed messages sent, by the dead-letter reason the ground truth expects."""
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    """Messages the decoders refused, by reason."""

    def group_recall(self, types: frozenset[str]) -> float | None:
        """Recall over all incidents expecting any of ``types``."""
        inc = sum(r.incidents for t, r in self.rows.items() if t in types)
        det = sum(r.detected for t, r in self.rows.items() if t in types)
        return det / inc if inc else None

    @property
    def false_per_elder_month(self) -> float:
        """Non-actionable alerts per elder-month, all detectors."""
        return sum(r.false for r in self.rows.values()) / self.elder_months

    def collapse_delay_p50(self) -> float | None:
        """Median delay to detect a daytime collapse (long lie → INACTIVITY), minutes."""
        return self.rows[AlertType.INACTIVITY.value].delay(0.5) if AlertType.INACTIVITY.value in self.rows else None


def inactivity_late_s(alert: Alert) -> float:
    """How much later than its limit an inactivity alert came, in seconds (the check-in window not included).

    Quiet time at the alert minus the limit; when a refit put the limit in force during the silence (evidence
    ``limit_from_quiet_min``: the minutes of quiet by then), minus that instead if it is later.

    >>> from detection.models import Severity
    >>> ev = {"quiet_min": 181.0, "limit_min": 30.0, "limit_from_quiet_min": 181.0}
    >>> a = Alert(site="h", type=AlertType.INACTIVITY, severity=Severity.WARNING, time_ms=0,
    ...           explanation="", explanation_zh="", evidence=ev)
    >>> b = msgspec.structs.replace(a, evidence={"quiet_min": 31.0, "limit_min": 30})
    >>> inactivity_late_s(a), inactivity_late_s(b)
    (0.0, 60.0)
    """
    ev = alert.evidence
    in_force = max(float(ev.get("limit_min", 0)), float(ev.get("limit_from_quiet_min", 0)))
    return 60 * (float(ev.get("quiet_min", 0)) - in_force)


def simulated(*, homes: int, days: int, seed: int, mix: str) -> tuple[HomeRegistry, list[Message], int]:
    """Registry, every message (in arrival order) and end time of one simulated scenario (for benchmarks)."""
    from firmware_sim.scenario import generate  # lazy: evaluation and benchmarks only

    sim = generate(homes=homes, days=days, seed=seed, mix=mix)
    return HomeRegistry.from_mapping(sim.registry), list(sim.messages()), sim.end_ms


def evaluate(
    *,
    runs: Sequence[Run] = TEST_RUNS,
    config: DetectConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Generate, replay and score every run; return the aggregated report."""
    from firmware_sim.scenario import generate  # lazy: evaluation only

    rows: dict[str, TypeRow] = {t.value: TypeRow(type=t.value) for t in AlertType}
    missed: list[dict[str, Any]] = []
    false_alerts: list[dict[str, Any]] = []
    elder_days = 0.0
    total_msgs = 0
    seconds = 0.0
    off_late = -1e9
    inact_late = 0.0
    undeliverable: list[dict[str, Any]] = []
    malformed_expected: dict[str, int] = defaultdict(int)
    rejected: dict[str, int] = defaultdict(int)
    for spec in runs:
        sim = generate(homes=spec.homes, days=spec.days, seed=spec.seed, mix=spec.mix)
        registry = HomeRegistry.from_mapping(sim.registry)
        last_seen: dict[tuple[str, str], int] = {}
        lateness: list[float] = []

        def tap(msgs: Iterable[Message], seen: dict[tuple[str, str], int] = last_seen) -> Iterator[Message]:
            for m in msgs:
                yield m  # resumed only after the engine has processed m
                parts = m[1].split("/", 5)
                if len(parts) == 6:
                    seen[(parts[2], parts[4])] = m[0]

        returns: dict[str, list[int]] = defaultdict(list)

        def check_offline(
            a: Alert,
            seen: dict[tuple[str, str], int] = last_seen,
            out: list[float] = lateness,
            back: dict[str, list[int]] = returns,
        ) -> None:
            # Independent of the engine's timers: last message of the device in the recording + the alert's own
            # limit (which runs from a later front-door opening for a band that went out with its wearer) or, when
            # the home's gateway came back after that message, the return + the device's cadence + 10 min (the
            # device could not speak while the gateway was down: the muted outage, docs/detection.md).
            if a.type is AlertType.SITE_OFFLINE and a.clears:
                back[a.site].append(a.time_ms)
            if a.type is AlertType.DEVICE_OFFLINE and not a.clears and a.device is not None:
                last = seen.get((a.site, a.device))
                if last is not None:
                    start = max(last, int(a.evidence.get("from_ms", last)))
                    due = start + 60_000 * float(a.evidence.get("limit_min", 0))
                    settle = 1000 * float(a.evidence.get("cadence_s", 0)) + 600_000
                    due = max([due, *(r + settle for r in back[a.site] if start < r <= a.time_ms)])
                    out.append((a.time_ms - due) / 1000)

        result = run(tap(sim.messages()), registry=registry, config=config, end_ms=sim.end_ms, on_alert=check_offline)
        if lateness:
            off_late = max(off_late, max(lateness))
        total_msgs += result.messages
        seconds += result.seconds
        elder_days += spec.homes * spec.days
        for reason, n in result.rejected.items():
            rejected[reason] += n
        for m in sim.malformed:
            malformed_expected[m.reason] += 1
        incidents = list(sim.ground_truth)
        by_site: dict[str, list[Any]] = defaultdict(list)
        for inc in incidents:
            by_site[inc.site].append(inc)
            for t in inc.expect:
                if t in rows:
                    rows[t].incidents += 1
            for t, why in inc.undeliverable:
                undeliverable.append({"seed": spec.seed, "incident": inc.id, "kind": inc.type, "alert": t, "why": why})
        detected: set[tuple[str, str]] = set()
        for u in result.updates:
            a = u.alert
            if a.clears or not u.notify or a.time_ms > sim.end_ms:
                continue  # after the simulated period every device falls silent: not a finding
            t = a.type.value
            row = rows[t]
            row.raised += 1
            if t == AlertType.INACTIVITY.value:
                inact_late = max(inact_late, inactivity_late_s(a))
            verdict = "false"
            forbidden = False
            for inc in by_site.get(a.site, ()):
                if not inc.start_ms - BEFORE_MS <= a.time_ms <= inc.end_ms + AFTER_MS:
                    continue
                if t in inc.expect and (inc.device is None or a.device is None or inc.device == a.device):
                    verdict = "true"
                    if (inc.id, t) not in detected:
                        detected.add((inc.id, t))
                        row.detected += 1
                        row.delays_min.append(max(0.0, (a.time_ms - inc.start_ms) / 60_000))
                    break
                if t in inc.forbid:
                    forbidden = True
                elif verdict == "false":
                    verdict = "related"
            if verdict == "related" and forbidden:
                verdict = "false"
            if verdict == "true":
                row.true += 1
            elif verdict == "related":
                row.related += 1
            else:
                row.false += 1
                false_alerts.append(
                    {"seed": spec.seed, "site": a.site, "type": t, "time_ms": a.time_ms, "explanation": a.explanation}
                )
        for inc in incidents:
            for t in inc.expect:
                if (inc.id, t) not in detected:
                    missed.append(
                        {
                            "seed": spec.seed,
                            "incident": inc.id,
                            "kind": inc.type,
                            "expect": t,
                            "start_ms": inc.start_ms,
                            "end_ms": inc.end_ms,
                            "notes": inc.notes,
                        }
                    )
        if progress is not None:
            progress(f"seed {spec.seed} ({spec.mix}): {result.messages} messages in {result.seconds:.1f} s")
    return EvalReport(
        runs=list(runs),
        elder_months=elder_days / 30.0,
        rows=rows,
        missed=missed,
        false_alerts=false_alerts,
        messages=total_msgs,
        seconds=seconds,
        offline_late_s_max=off_late,
        inactivity_late_s_max=inact_late,
        undeliverable=undeliverable,
        malformed_expected=dict(malformed_expected),
        rejected=dict(rejected),
    )


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.0f} %" if pct else f"{x:.1f}"


def _counts(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) or "none"


def report_markdown(rep: EvalReport) -> str:
    """The evaluation table (Markdown) for the terminal and docs/detection.md."""
    lines = [
        "| alert type | incidents | detected | recall | raised | precision | delay p50 (min) | delay p95 (min) |"
        " false / elder-month |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, r in rep.rows.items():
        if not r.incidents and not r.raised:
            continue
        lines.append(
            f"| {t} | {r.incidents} | {r.detected} | {_fmt(r.recall, True)} | {r.raised} | {_fmt(r.precision, True)}"
            f" | {_fmt(r.delay(0.5))} | {_fmt(r.delay(0.95))} | {r.false / rep.elder_months:.2f} |"
        )
    runs = ", ".join(f"seed {r.seed}: {r.homes} homes × {r.days} d, {r.mix}" for r in rep.runs)
    lines += [
        "",
        f"Runs: {runs} ({rep.elder_months:.1f} elder-months, {rep.messages:,} messages replayed in"
        f" {rep.seconds:.1f} s = {rep.messages / max(rep.seconds, 1e-9):,.0f} msg/s including decoding).",
        "",
        f"- life-safety recall: {_fmt(rep.group_recall(LIFE_SAFETY), True)} (target 100 %)",
        f"- behavioural recall: {_fmt(rep.group_recall(BEHAVIOUR), True)} (target ≥ 95 %)",
        f"- non-actionable alerts per elder-month: {rep.false_per_elder_month:.2f} (target ≤ 0.5)",
        f"- daytime collapse (long lie) detection delay p50: {_fmt(rep.collapse_delay_p50())} min (target ≤ 60)",
        f"- inactivity alerts later than their threshold by at most {rep.inactivity_late_s_max:.0f} s (target ≤ 60 s)",
        f"- device-offline alerts later than (last message in the recording + threshold, or the home back online"
        f" + the device's cadence + 10 min) by at most"
        f" {_fmt(rep.offline_late_s_max if rep.offline_late_s_max > -1e8 else None)} s (target ≤ 60 s)",
        f"- expected alerts the system cannot raise (evidence never delivered, not counted as misses):"
        f" {len(rep.undeliverable)}"
        + "".join(f"; {u['kind']} → {u['alert']} ({u['why']})" for u in rep.undeliverable[:5]),
        f"- malformed messages sent / refused, by reason: {_counts(rep.malformed_expected)} / {_counts(rep.rejected)}",
    ]
    return "\n".join(lines)


def run_evaluation(*, full: bool = True, progress: Callable[[str], None] | None = None) -> tuple[EvalReport, str]:
    """What ``eldercare evaluate`` runs: :data:`FULL_RUNS` (or :data:`TEST_RUNS`), and the Markdown table."""
    rep = evaluate(runs=FULL_RUNS if full else TEST_RUNS, progress=progress)
    return rep, report_markdown(rep)
