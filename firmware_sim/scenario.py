"""Scenarios: many homes over many days, deterministic from one seed, as one merged message stream.

>>> sim = generate(homes=2, days=1, seed=7)
>>> received_ms, topic, payload = next(iter(sim.messages()))
>>> topic.startswith("ec/v1/h000")
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from firmware_sim.errors import ScenarioError
from firmware_sim.incidents.gas import plan_gas
from firmware_sim.malformed import plan_malformed
from firmware_sim.models import DAY_MS, DEFAULT_START_MS, TZ_OFFSET_MS, HomeSpec, Incident, Malformed, Mix
from firmware_sim.people import STANDARD_DEVICES, RegistryBuilder, draw_profile, site_id
from firmware_sim.plan import Plan
from firmware_sim.planner import Planner
from firmware_sim.renderers import HomeRenderer

DEFAULT_MATTRESS_CADENCE_S: Final = 20.0
GROUND_TRUTH_VERSION: Final = 2
"""2 added ``undeliverable`` to incidents and the ``malformed`` list (docs/simulator.md)."""
MIX_PRESETS: Final[dict[str, dict[Mix, float]]] = {
    "normal": {Mix.NORMAL: 1.0},
    "incident-rich": {Mix.INCIDENT_RICH: 1.0},
    "device-faulty": {Mix.DEVICE_FAULTY: 1.0},
    "realistic": {Mix.NORMAL: 0.8, Mix.INCIDENT_RICH: 0.1, Mix.DEVICE_FAULTY: 0.1},
}
"""Named mixes; any other mix is written ``normal:70,incident-rich:20,device-faulty:10``."""

Message = tuple[int, str, bytes]
"""(received ms, topic, payload bytes exactly as on the wire)."""


def parse_mix(mix: str) -> dict[Mix, float]:
    """Parse a scenario mix: a preset name or ``kind:weight`` pairs separated by commas.

    >>> parse_mix("normal:3,device-faulty:1")
    {<Mix.NORMAL: 'normal'>: 0.75, <Mix.DEVICE_FAULTY: 'device-faulty'>: 0.25}
    """
    if mix in MIX_PRESETS:
        return dict(MIX_PRESETS[mix])
    weights: dict[Mix, float] = {}
    for part in mix.split(","):
        name, _, value = part.strip().partition(":")
        try:
            weights[Mix(name.strip())] = float(value) if value else 1.0
        except ValueError:
            known = ", ".join([*MIX_PRESETS, *(m.value for m in Mix)])
            raise ScenarioError(parameter="mix", reason=f"bad part {part!r}; use {known} or kind:weight") from None
    total = sum(weights.values())
    if total <= 0:
        raise ScenarioError(parameter="mix", reason="weights must add up to more than 0")
    return {k: v / total for k, v in weights.items()}


def _assign_mix(weights: dict[Mix, float], homes: int, rng: np.random.Generator) -> list[Mix]:
    """Exact proportions (largest remainder), shuffled: a 10-home run with 10 % faulty has exactly one."""
    kinds = list(weights)
    raw = np.array([weights[k] * homes for k in kinds])
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: homes - int(counts.sum())]:
        counts[i] += 1
    out = [k for k, c in zip(kinds, counts.tolist(), strict=True) for _ in range(c)]
    rng.shuffle(out)
    return out


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Parameters of one simulation run."""

    homes: int
    days: int
    seed: int = 1
    mix: str = "normal"
    start_ms: int = DEFAULT_START_MS
    mattress_cadence_s: float = DEFAULT_MATTRESS_CADENCE_S
    site_prefix: str = "h"
    """Site ids are ``{prefix}0001`` …; tests sharing a broker use a unique prefix."""

    def validate(self) -> None:
        """Fail fast on impossible parameters."""
        if self.homes < 1:
            raise ScenarioError(parameter="homes", reason="need at least one home")
        if self.days < 1:
            raise ScenarioError(parameter="days", reason="need at least one day")
        if not 5 <= self.mattress_cadence_s <= 60:
            raise ScenarioError(parameter="mattress_cadence_s", reason="must be between 5 and 60 s")
        if (self.start_ms + TZ_OFFSET_MS) % DAY_MS:
            raise ScenarioError(parameter="start_ms", reason="must be a local midnight (Asia/Shanghai)")
        if not self.site_prefix.replace("-", "").replace("_", "").isalnum() or len(self.site_prefix) > 40:
            raise ScenarioError(parameter="site_prefix", reason="letters, digits, - and _ only (at most 40)")
        parse_mix(self.mix)


class Simulation:
    """A planned simulation: homes, registry and ground truth now; messages rendered lazily, day by day."""

    def __init__(self, config: SimConfig) -> None:
        config.validate()
        self.config = config
        weights = parse_mix(config.mix)
        mixes = _assign_mix(weights, config.homes, np.random.Generator(np.random.PCG64([config.seed, 0xA5516])))
        builder = RegistryBuilder(homes=config.homes, seed=config.seed)
        self.homes: list[HomeSpec] = []
        self.plans: list[Plan] = []
        for i in range(config.homes):
            site = site_id(i, config.homes, config.site_prefix)
            prng = np.random.Generator(np.random.PCG64([config.seed, i, 0]))
            spec = HomeSpec(
                index=i,
                site=site,
                gateway=f"gw-{site}",
                grid=builder.grid_of(i),
                mix=mixes[i],
                profile=draw_profile(prng, mix=mixes[i]),
                devices=dict(STANDARD_DEVICES),
            )
            self.homes.append(spec)
            planner = Planner(
                spec=spec,
                rng=np.random.Generator(np.random.PCG64([config.seed, i, 1])),
                start_ms=config.start_ms,
                days=config.days,
            )
            plan = planner.plan()
            plan.malformed = plan_malformed(plan, np.random.Generator(np.random.PCG64([config.seed, i, 3])))
            plan_gas(plan, np.random.Generator(np.random.PCG64([config.seed, i, 7])))
            self.plans.append(plan)
        self.registry: dict[str, object] = builder.build(self.homes)
        end = self.end_ms
        self.ground_truth: list[Incident] = sorted(
            (inc for plan in self.plans for inc in plan.incidents if inc.start_ms < end),
            key=lambda inc: (inc.start_ms, inc.id),
        )
        self.malformed: list[Malformed] = sorted(
            (m for plan in self.plans for m in plan.malformed), key=lambda m: (m.sent_ms, m.id)
        )
        """Every malformed message sent (device-faulty homes), with the dead-letter reason it must get."""

    @property
    def start_ms(self) -> int:
        """First instant simulated (epoch ms)."""
        return self.config.start_ms

    @property
    def end_ms(self) -> int:
        """End of the simulated period (exclusive)."""
        return self.config.start_ms + self.config.days * DAY_MS

    def ground_truth_document(self) -> dict[str, object]:
        """The ground-truth file content: run parameters plus every incident."""
        c = self.config
        return {
            "version": GROUND_TRUTH_VERSION,
            "seed": c.seed,
            "homes": c.homes,
            "days": c.days,
            "mix": c.mix,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "mattress_cadence_s": c.mattress_cadence_s,
            "incidents": [inc.to_json() for inc in self.ground_truth],
            "malformed": [m.to_json() for m in self.malformed],
        }

    def messages(
        self,
        *,
        on_day: Callable[[int, int], None] | None = None,
        chunk_ms: int = DAY_MS,
        sites: Collection[str] | None = None,
    ) -> Iterator[Message]:
        """Every delivered message of every home, sorted by received time (ties: stable, by home).

        ``on_day(day, messages_so_far)`` is called after each simulated day (for progress bars); see
        :meth:`batches` for ``chunk_ms`` and ``sites``.
        """
        for recv, topics, payloads in self.batches(on_day=on_day, chunk_ms=chunk_ms, sites=sites):
            yield from zip(recv, topics, payloads, strict=True)

    def batches(
        self,
        *,
        on_day: Callable[[int, int], None] | None = None,
        chunk_ms: int = DAY_MS,
        sites: Collection[str] | None = None,
    ) -> Iterator[tuple[list[int], list[str], list[bytes]]]:
        """The same stream as :meth:`messages`, one chunk (a simulated day by default) per batch of parallel lists.

        Devices render one chunk at a time; anything received after the chunk (late, queued, buffered) waits in a
        carry-over list, which is safe because nothing is ever received before it happened. A chunk shorter
        than a day (it must divide the day; live mode uses 10 min so 10,000 homes start publishing at once)
        gives a stream with the same statistics but other random draws, so other bytes; recordings use days.
        ``sites`` renders only those homes (each home has its own random streams, so its messages are the same
        as in the whole stream): a quick look at one incident.
        """
        if chunk_ms <= 0 or DAY_MS % chunk_ms:
            raise ScenarioError(parameter="chunk_ms", reason="must divide a day (86,400,000 ms)")
        renderers = [
            HomeRenderer(
                plan=plan,
                rng=np.random.Generator(np.random.PCG64([self.config.seed, i, 2])),
                mattress_cadence_s=self.config.mattress_cadence_s,
            )
            for i, plan in enumerate(self.plans)
            if sites is None or plan.spec.site in sites
        ]
        carry_r: list[int] = []
        carry_t: list[str] = []
        carry_p: list[bytes] = []
        emitted = 0
        per_day = DAY_MS // chunk_ms
        chunks = self.config.days * per_day
        for k in range(chunks):
            c0 = self.start_ms + k * chunk_ms
            c1 = c0 + chunk_ms
            rs, ts, ps = carry_r, carry_t, carry_p
            for r in renderers:
                r_, t_, p_ = r.render(c0, c1)
                rs.extend(r_)
                ts.extend(t_)
                ps.extend(p_)
            recv = np.array(rs, dtype=np.int64)
            order = np.argsort(recv, kind="stable")
            cut = int(np.searchsorted(recv[order], c1, side="left")) if k < chunks - 1 else order.size
            now = order[:cut].tolist()
            yield recv[order[:cut]].tolist(), [ts[i] for i in now], [ps[i] for i in now]
            emitted += cut
            rest = order[cut:].tolist()
            carry_r = [rs[i] for i in rest]
            carry_t = [ts[i] for i in rest]
            carry_p = [ps[i] for i in rest]
            if on_day is not None and (k + 1) % per_day == 0:
                on_day(k // per_day, emitted)


def generate(
    *,
    homes: int,
    days: int,
    seed: int = 1,
    mix: str = "normal",
    start_ms: int = DEFAULT_START_MS,
    mattress_cadence_s: float = DEFAULT_MATTRESS_CADENCE_S,
    site_prefix: str = "h",
) -> Simulation:
    """Plan a simulation (cheap); iterate :meth:`Simulation.messages` to render it."""
    return Simulation(
        SimConfig(
            homes=homes,
            days=days,
            seed=seed,
            mix=mix,
            start_ms=start_ms,
            mattress_cadence_s=mattress_cadence_s,
            site_prefix=site_prefix,
        )
    )
