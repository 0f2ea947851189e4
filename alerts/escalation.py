"""Escalation policies per severity, configurable per community, and the pure timer arithmetic.

Policies are plain msgspec structs, loadable from JSON (see docs/alerts.md). The service snapshots the
policy into the alert row when it is raised, together with the due times, so timers survive restarts
and a policy change does not rewrite the rules of alerts already running.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from alerts.store.errors import PolicyError
from detection.models import LIFE_SAFETY_TYPES, AlertType, Severity


class Role(StrEnum):
    """Worker roles of docs/registry.md; a policy names roles, the registry resolves them to people."""

    GRID_WORKER = "grid_worker"
    COMMUNITY_DUTY = "community_duty"
    STREET = "street"
    DISTRICT = "district"
    ADMIN = "admin"


FALLBACK_ROLES: Final[tuple[Role, ...]] = (
    Role.GRID_WORKER,
    Role.COMMUNITY_DUTY,
    Role.STREET,
    Role.DISTRICT,
    Role.ADMIN,
)
"""Walked upwards when a policy's roles have nobody for a home: an alert never goes to no one."""

DEVICE_TYPES: Final[frozenset[AlertType]] = frozenset(
    {
        AlertType.DEVICE_OFFLINE,
        AlertType.SITE_OFFLINE,
        AlertType.LOW_BATTERY,
        AlertType.TAMPER,
        AlertType.NOT_WORN,
        AlertType.DEVICE_FAULT,
    }
)
"""Device-health alerts: per-device dedup and the ``device`` policy (batched, quiet hours)."""

PolicyKey = Literal["critical", "warning", "info", "device"]
POLICY_KEYS: Final[tuple[PolicyKey, ...]] = ("critical", "warning", "info", "device")


class EscalationStep(msgspec.Struct, frozen=True, kw_only=True):
    """Notify more roles once the alert has been unacknowledged for ``after_s`` seconds."""

    after_s: int
    roles: tuple[Role, ...]


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """How one class of alert is notified, reminded and escalated."""

    notify: tuple[Role, ...] = (Role.GRID_WORKER,)
    """Roles notified as soon as the alert is raised."""
    remind_every_s: int | None = None
    """Repeat the notification to everyone notified so far until someone acknowledges."""
    max_reminders: int | None = None
    """At most this many reminders per alert (None: unbounded); escalation and the on-site deadline still apply."""
    escalate: tuple[EscalationStep, ...] = ()
    """Steps in increasing ``after_s``, counted from the raise, while unacknowledged."""
    on_site_within_s: int | None = None
    """Deadline from the raise for someone to be on site; missing it notifies ``overdue_roles`` once."""
    overdue_roles: tuple[Role, ...] = (Role.COMMUNITY_DUTY, Role.STREET)
    batch_every_s: int | None = None
    """Non-life-safety only: collect notifications into one message per worker per window."""
    quiet_hours: bool = False
    """Non-life-safety only: during quiet hours, defer notifications to the morning digest."""

    def validate(self, key: str) -> None:
        """Raise :class:`PolicyError` if the policy is inconsistent."""
        if not self.notify:
            raise PolicyError(key, "notify must name at least one role")
        if self.remind_every_s is not None and self.remind_every_s <= 0:
            raise PolicyError(key, "remind_every_s must be positive")
        if self.batch_every_s is not None and self.batch_every_s <= 0:
            raise PolicyError(key, "batch_every_s must be positive")
        if self.max_reminders is not None and self.max_reminders < 0:
            raise PolicyError(key, "max_reminders must not be negative")
        if self.on_site_within_s is not None and self.on_site_within_s <= 0:
            raise PolicyError(key, "on_site_within_s must be positive")
        afters = [step.after_s for step in self.escalate]
        if afters != sorted(afters) or any(a <= 0 for a in afters):
            raise PolicyError(key, "escalation steps must have positive, increasing after_s")
        if any(not step.roles for step in self.escalate):
            raise PolicyError(key, "each escalation step must name at least one role")
        if key.rsplit(".", 1)[-1] == "critical" and (self.batch_every_s is not None or self.quiet_hours):
            raise PolicyError(key, "critical alerts are never batched or muted")


def _critical() -> Policy:
    return Policy(
        notify=(Role.GRID_WORKER, Role.COMMUNITY_DUTY),
        remind_every_s=120,
        max_reminders=8,  # 16 minutes of reminders; then the escalation and the 30-minute overdue notice remain
        escalate=(EscalationStep(after_s=300, roles=(Role.STREET,)),),
        on_site_within_s=1800,
    )


def _warning() -> Policy:
    return Policy(
        notify=(Role.GRID_WORKER,),
        remind_every_s=600,
        max_reminders=3,
        escalate=(EscalationStep(after_s=1800, roles=(Role.COMMUNITY_DUTY,)),),
    )


def _info() -> Policy:
    return Policy(notify=(Role.GRID_WORKER,), quiet_hours=True)


def _device() -> Policy:
    return Policy(notify=(Role.GRID_WORKER,), batch_every_s=900, quiet_hours=True)


class PolicySet(msgspec.Struct, frozen=True, kw_only=True):
    """One policy per class of alert."""

    critical: Policy = msgspec.field(default_factory=_critical)
    warning: Policy = msgspec.field(default_factory=_warning)
    info: Policy = msgspec.field(default_factory=_info)
    device: Policy = msgspec.field(default_factory=_device)

    def get(self, key: PolicyKey) -> Policy:
        """The policy for one class."""
        policy: Policy = getattr(self, key)
        return policy


class QuietHours(msgspec.Struct, frozen=True, kw_only=True):
    """Local-time window in which low-priority notifications wait for the morning digest."""

    start: str = "22:00"
    end: str = "07:00"
    digest_at: str = "07:30"
    timezone: str = "Asia/Shanghai"

    def validate(self) -> None:
        """Raise :class:`PolicyError` for a time that is not HH:MM or a time zone this machine does not know."""
        for name in ("start", "end", "digest_at"):
            text = getattr(self, name)
            try:
                self._hm(text)
            except ValueError:
                raise PolicyError(f"quiet.{name}", f"{text!r} is not a time of day (HH:MM)") from None
        try:
            self._tz()
        except (ValueError, ZoneInfoNotFoundError):
            raise PolicyError("quiet.timezone", f"unknown time zone {self.timezone!r} (e.g. Asia/Shanghai)") from None

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @staticmethod
    def _hm(text: str) -> dt.time:
        hour, minute = text.split(":")  # ValueError unless exactly one colon
        return dt.time(int(hour), int(minute))

    def is_quiet(self, time_ms: int) -> bool:
        """True if ``time_ms`` falls inside the quiet window (which may span midnight).

        >>> q = QuietHours()
        >>> q.is_quiet(1_700_000_000_000)  # 2023-11-15 06:13 in Shanghai
        True
        """
        local = dt.datetime.fromtimestamp(time_ms / 1000, tz=self._tz()).time()
        start, end = self._hm(self.start), self._hm(self.end)
        if start <= end:
            return start <= local < end
        return local >= start or local < end

    def next_digest_ms(self, time_ms: int) -> int:
        """The next digest time strictly after ``time_ms`` (UTC epoch ms)."""
        tz = self._tz()
        local = dt.datetime.fromtimestamp(time_ms / 1000, tz=tz)
        at = self._hm(self.digest_at)
        candidate = dt.datetime.combine(local.date(), at, tzinfo=tz)
        if candidate <= local:
            candidate = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=tz)
        return int(candidate.timestamp() * 1000)


class PolicyBook(msgspec.Struct, frozen=True, kw_only=True):
    """Default policies, per-community overrides and the quiet hours; load with :meth:`from_json`."""

    default: PolicySet = msgspec.field(default_factory=PolicySet)
    communities: dict[str, PolicySet] = msgspec.field(default_factory=dict)
    quiet: QuietHours = msgspec.field(default_factory=QuietHours)

    def __post_init__(self) -> None:
        for scope, pset in [("default", self.default), *self.communities.items()]:
            for key in POLICY_KEYS:
                pset.get(key).validate(f"{scope}.{key}")
        self.quiet.validate()

    @classmethod
    def from_json(cls, data: bytes | str) -> PolicyBook:
        """Decode and validate a JSON policy book (an operator's file: ``ELDERCARE_POLICIES_PATH``).

        An unknown key anywhere is refused (a misspelt ``remind_every_s`` would otherwise leave the default in force
        unnoticed). What a policy does not name it keeps from the policy it overrides, field by field: the book's
        ``default`` from the built-in one, a community's from the book's ``default`` (``null`` turns a field off).
        Before, a file that only made critical reminders faster also dropped their escalation to the street.

        >>> book = PolicyBook.from_json(
        ...     '{"default": {"warning": {"remind_every_s": 300}},'
        ...     ' "communities": {"C01": {"critical": {"remind_every_s": 60}}}}'
        ... )
        >>> book.communities["C01"].warning.remind_every_s, book.communities["C01"].critical.escalate[0].after_s
        (300, 300)
        >>> PolicyBook.from_json('{"default": {"warning": {"remind_every": 300}}}')
        Traceback (most recent call last):
        ...
        alerts.store.errors.PolicyError: escalation policy 'default.warning': unknown key 'remind_every'
        """
        try:
            raw = msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise PolicyError("book", f"not valid JSON ({exc})") from None
        _check_keys(raw)
        default = _over(msgspec.to_builtins(PolicySet()), raw.get("default"))
        raw["default"] = default
        communities = raw.get("communities")
        if isinstance(communities, dict):
            raw["communities"] = {name: _over(default, pset) for name, pset in communities.items()}
        try:
            return msgspec.convert(raw, type=cls)
        except msgspec.ValidationError as exc:
            raise PolicyError("book", str(exc)) from None

    def to_json(self) -> bytes:
        """Encode as JSON."""
        return msgspec.json.encode(self)

    def policy_for(self, *, community: str | None, alert_type: AlertType, severity: Severity) -> Policy:
        """The policy that applies; life-safety alerts are forced immediate whatever the configuration says."""
        pset = self.communities.get(community or "", self.default)
        key: PolicyKey = "device" if alert_type in DEVICE_TYPES else _SEVERITY_KEY[severity]
        policy = pset.get(key)
        if alert_type in LIFE_SAFETY_TYPES:
            policy = msgspec.structs.replace(policy, batch_every_s=None, quiet_hours=False)
        return policy


def _field_names(struct: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.name for f in msgspec.structs.fields(struct))


def _unknown(where: str, value: object, known: frozenset[str]) -> None:
    if isinstance(value, dict):
        for key in value:
            if key not in known:
                raise PolicyError(where, f"unknown key {key!r}")


def _over(base: dict[str, Any], pset: object) -> Any:
    """``pset`` (a policy set as decoded) over ``base`` (a complete one), policy by policy and field by field."""
    if pset is None:
        return base
    if not isinstance(pset, dict):
        return pset  # refused by the conversion, with its type named
    merged: dict[str, Any] = {}
    for key, fields in base.items():
        policy = pset.get(key, {})
        merged[key] = {**fields, **policy} if isinstance(policy, dict) else policy  # not an object: refused later
    return merged


def _check_keys(raw: object) -> None:
    """Refuse keys a policy book does not have, naming where (``default.warning``, ``communities.C01``, ``quiet``)."""
    if not isinstance(raw, dict):
        raise PolicyError("book", "must be a JSON object")
    _unknown("book", raw, _field_names(PolicyBook))
    sets: list[tuple[str, object]] = [("default", raw.get("default"))]
    communities = raw.get("communities")
    if isinstance(communities, dict):
        sets += [(f"communities.{name}", pset) for name, pset in communities.items()]
    policy_fields, step_fields = _field_names(Policy), _field_names(EscalationStep)
    for scope, pset in sets:
        _unknown(scope, pset, frozenset(POLICY_KEYS))
        if not isinstance(pset, dict):
            continue
        for key, policy in pset.items():
            _unknown(f"{scope}.{key}", policy, policy_fields)
            steps = policy.get("escalate") if isinstance(policy, dict) else None
            for i, step in enumerate(steps if isinstance(steps, list) else []):
                _unknown(f"{scope}.{key}.escalate[{i}]", step, step_fields)
    _unknown("quiet", raw.get("quiet"), _field_names(QuietHours))


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def describe(policy: Policy) -> tuple[str, str, str, str, str]:
    """One policy in words: notify at once, reminders, escalation, on-site deadline, batching / quiet hours.

    >>> describe(PolicySet().critical)[:3]
    ('grid_worker, community_duty', 'every 2 min, at most 8', 'street after 5 min')
    >>> describe(PolicySet().device)[3:]
    ('–', 'batched every 15 min; quiet hours: morning digest')
    """
    reminders = "–"
    if policy.remind_every_s:
        reminders = f"every {_minutes(policy.remind_every_s)}"
        if policy.max_reminders is not None:
            reminders += f", at most {policy.max_reminders}"
    escalation = "; ".join(f"{', '.join(s.roles)} after {_minutes(s.after_s)}" for s in policy.escalate) or "–"
    on_site = "–"
    if policy.on_site_within_s:
        on_site = f"{_minutes(policy.on_site_within_s)} → {', '.join(policy.overdue_roles)}"
    held = [f"batched every {_minutes(policy.batch_every_s)}"] if policy.batch_every_s else []
    held += ["quiet hours: morning digest"] if policy.quiet_hours else []
    return ", ".join(policy.notify), reminders, escalation, on_site, "; ".join(held) or "–"


_SEVERITY_KEY: Final[dict[Severity, PolicyKey]] = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}


class Timers(msgspec.Struct, frozen=True, kw_only=True):
    """Persisted due times of one alert (UTC epoch ms; None = not armed)."""

    remind_due_ms: int | None
    escalate_due_ms: int | None
    escalation_step: int
    on_site_due_ms: int | None


def initial_timers(policy: Policy, raised_ms: int) -> Timers:
    """Timers armed when an alert is raised.

    >>> t = initial_timers(_critical(), 0)
    >>> (t.remind_due_ms, t.escalate_due_ms, t.on_site_due_ms)
    (120000, 300000, 1800000)
    """
    return Timers(
        remind_due_ms=raised_ms + policy.remind_every_s * 1000 if policy.remind_every_s else None,
        escalate_due_ms=raised_ms + policy.escalate[0].after_s * 1000 if policy.escalate else None,
        escalation_step=0,
        on_site_due_ms=raised_ms + policy.on_site_within_s * 1000 if policy.on_site_within_s else None,
    )


def next_reminder_ms(policy: Policy, due_ms: int, now_ms: int) -> int | None:
    """The reminder after the one due at ``due_ms``; missed reminders (e.g. while down) collapse into one.

    >>> next_reminder_ms(_critical(), 120_000, 125_000)
    240000
    >>> next_reminder_ms(_critical(), 120_000, 1_000_000)
    1080000
    """
    if not policy.remind_every_s:
        return None
    every = policy.remind_every_s * 1000
    nxt = due_ms + every
    if nxt <= now_ms:
        nxt += ((now_ms - nxt) // every + 1) * every
    return nxt


def next_escalation_ms(policy: Policy, raised_ms: int, step: int) -> int | None:
    """Due time of escalation step ``step`` (0-based), or None when there are no more steps."""
    if step >= len(policy.escalate):
        return None
    return raised_ms + policy.escalate[step].after_s * 1000


def batch_due_ms(policy: Policy, now_ms: int) -> int:
    """End of the batching window containing ``now_ms``."""
    every = (policy.batch_every_s or 1) * 1000
    return (now_ms // every + 1) * every


class DueWork(msgspec.Struct, frozen=True, kw_only=True):
    """What became due for one alert at one tick."""

    remind: bool = False
    escalate_roles: tuple[Role, ...] = ()
    escalated_to_step: int = 0
    overdue: bool = False

    @property
    def empty(self) -> bool:
        """True if nothing is to be sent."""
        return not (self.remind or self.escalate_roles or self.overdue)


def plan_due(policy: Policy, *, anchor_ms: int, timers: Timers, now_ms: int) -> tuple[Timers, DueWork]:
    """Advance the timers to ``now_ms`` and say what to send; pure, so restarts and replays behave the same.

    >>> p = _critical()
    >>> t = initial_timers(p, 0)
    >>> t2, work = plan_due(p, anchor_ms=0, timers=t, now_ms=300_000)
    >>> work.remind, work.escalate_roles, t2.remind_due_ms, t2.escalate_due_ms
    (True, (<Role.STREET: 'street'>,), 360000, None)
    """
    remind = timers.remind_due_ms is not None and timers.remind_due_ms <= now_ms
    remind_due = (
        next_reminder_ms(policy, timers.remind_due_ms, now_ms)
        if remind and timers.remind_due_ms is not None
        else timers.remind_due_ms
    )
    last_reminder_ms = (
        anchor_ms + policy.remind_every_s * 1000 * policy.max_reminders
        if policy.remind_every_s and policy.max_reminders is not None
        else None
    )
    if remind_due is not None and last_reminder_ms is not None and remind_due > last_reminder_ms:
        remind_due = None  # bounded: the N-th reminder is the last (no phone rings every 2 minutes for ever)
    roles: list[Role] = []
    step = timers.escalation_step
    escalate_due = timers.escalate_due_ms
    while escalate_due is not None and escalate_due <= now_ms:
        roles.extend(r for r in policy.escalate[step].roles if r not in roles)
        step += 1
        escalate_due = next_escalation_ms(policy, anchor_ms, step)
    overdue = timers.on_site_due_ms is not None and timers.on_site_due_ms <= now_ms
    new = Timers(
        remind_due_ms=remind_due,
        escalate_due_ms=escalate_due,
        escalation_step=step,
        on_site_due_ms=None if overdue else timers.on_site_due_ms,
    )
    return new, DueWork(remind=remind, escalate_roles=tuple(roles), escalated_to_step=step, overdue=overdue)
