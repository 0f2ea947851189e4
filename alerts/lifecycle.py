"""Alert lifecycle: states, actions, outcomes and the pure transition rule.

```
            ack           en_route          on_site           resolve(outcome)
  open ──────────▶ acknowledged ──────▶ en_route ──────▶ on_site ──────────▶ resolved
    │  └──────────────── forward skips allowed (earlier clocks are filled in) ───────▲
    │
    └── clear (condition ended by itself, not life-safety) ──▶ cleared
```
A life-safety alert that clears by itself only gets ``cleared_ms`` set: a person must still resolve it.
``resolved`` and ``cleared`` are final; moving backwards is refused with :class:`InvalidTransition`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from alerts.escalation import DEVICE_TYPES
from alerts.store.errors import InvalidTransition


class State(StrEnum):
    """Where an alert is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CLEARED = "cleared"


ACTIVE_STATES: Final[frozenset[State]] = frozenset({State.OPEN, State.ACKNOWLEDGED, State.EN_ROUTE, State.ON_SITE})
"""States in which the alert is still someone's job (and deduplicates repeats)."""

FINAL_STATES: Final[frozenset[State]] = frozenset({State.RESOLVED, State.CLEARED})


class Action(StrEnum):
    """What a person (or the system) does to an alert."""

    ACKNOWLEDGE = "acknowledge"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVE = "resolve"
    CLEAR = "clear"
    NOTE = "note"
    """Adds a note without changing the state."""
    ASSIGN = "assign"
    """Makes a worker the owner without changing the state (``AlertService.assign``; not a transition)."""


class Outcome(StrEnum):
    """How a resolved alert ended (for the statistics pages, and a label for learning: alerts/learning.py)."""

    ELDER_FINE = "elder_fine"
    """Checked (a call, a visit): nothing was wrong with the elder. A behavioural alert's commonest end."""
    FALSE_ALARM = "false_alarm"
    ASSISTED_AT_HOME = "assisted_at_home"
    SENT_TO_HOSPITAL = "sent_to_hospital"
    FAMILY_CONTACTED = "family_contacted"
    NO_ONE_HOME = "no_one_home"
    DEVICE_FIXED = "device_fixed"
    OTHER = "other"


class Channel(StrEnum):
    """Where an action came from; recorded on every transition."""

    LINK = "link"
    CONSOLE = "console"
    API = "api"
    PHONE = "phone"
    SYSTEM = "system"
    DEVICE = "device"


_TARGET: Final[dict[Action, State]] = {
    Action.ACKNOWLEDGE: State.ACKNOWLEDGED,
    Action.EN_ROUTE: State.EN_ROUTE,
    Action.ON_SITE: State.ON_SITE,
    Action.RESOLVE: State.RESOLVED,
}
_ORDER: Final[dict[State, int]] = {
    State.OPEN: 0,
    State.ACKNOWLEDGED: 1,
    State.EN_ROUTE: 2,
    State.ON_SITE: 3,
    State.RESOLVED: 4,
}


def target_state(action: Action) -> State | None:
    """The state an action moves to, or None for actions that do not move (note) or depend on the type (clear)."""
    return _TARGET.get(action)


def reached(state: State, action: Action) -> bool:
    """True if an alert in ``state`` has already done what ``action`` asks (used to make links idempotent).

    >>> reached(State.EN_ROUTE, Action.ACKNOWLEDGE)
    True
    >>> reached(State.OPEN, Action.ACKNOWLEDGE)
    False
    """
    target = _TARGET.get(action)
    if target is None or state is State.CLEARED:
        return state in FINAL_STATES
    return _ORDER[state] >= _ORDER[target]


def next_state(
    state: State,
    action: Action,
    *,
    life_safety: bool,
    outcome: Outcome | None = None,
    alert_id: int | None = None,
    alert_type: str | None = None,
) -> State:
    """Return the state after ``action``, or raise :class:`InvalidTransition` with the reason.

    With ``alert_type``, a resolve's outcome must be one :func:`outcomes_for` offers for that type.

    >>> next_state(State.OPEN, Action.ACKNOWLEDGE, life_safety=True)
    <State.ACKNOWLEDGED: 'acknowledged'>
    >>> next_state(State.OPEN, Action.CLEAR, life_safety=True)
    <State.OPEN: 'open'>
    >>> next_state(State.ON_SITE, Action.ACKNOWLEDGE, life_safety=False)
    Traceback (most recent call last):
    ...
    alerts.store.errors.InvalidTransition: alert None: cannot acknowledge when on_site: already on_site
    """
    if state in FINAL_STATES:
        raise InvalidTransition(alert_id=alert_id, state=state, action=action, reason=f"alert is {state} (final)")
    if action is Action.NOTE:
        return state
    if action is Action.ASSIGN:
        # An assignment names a worker: it goes through AlertStore.assign, never through a plain transition.
        raise InvalidTransition(alert_id=alert_id, state=state, action=action, reason="assign needs a worker")
    if action is Action.CLEAR:
        # A life-safety alert stays open after its condition ends: a person must close it.
        return state if life_safety else State.CLEARED
    if action is Action.RESOLVE and outcome is None:
        raise InvalidTransition(alert_id=alert_id, state=state, action=action, reason="an outcome is required")
    if action is not Action.RESOLVE and outcome is not None:
        raise InvalidTransition(alert_id=alert_id, state=state, action=action, reason="only resolve takes an outcome")
    if outcome is not None and alert_type is not None and outcome not in outcomes_for(alert_type):
        raise InvalidTransition(
            alert_id=alert_id, state=state, action=action, reason=f"{outcome} is not an outcome of a {alert_type} alert"
        )
    target = _TARGET[action]
    if _ORDER[target] <= _ORDER[state]:
        raise InvalidTransition(alert_id=alert_id, state=state, action=action, reason=f"already {state}")
    return target


_PERSON_OUTCOMES: Final[tuple[Outcome, ...]] = (
    Outcome.ELDER_FINE,
    Outcome.ASSISTED_AT_HOME,
    Outcome.SENT_TO_HOSPITAL,
    Outcome.FAMILY_CONTACTED,
    Outcome.NO_ONE_HOME,
    Outcome.FALSE_ALARM,
    Outcome.OTHER,
)
_DEVICE_OUTCOMES: Final[tuple[Outcome, ...]] = (Outcome.DEVICE_FIXED, Outcome.FALSE_ALARM, Outcome.OTHER)
_DEVICE_TYPE_VALUES: Final = frozenset(t.value for t in DEVICE_TYPES)


def outcomes_for(alert_type: str) -> tuple[Outcome, ...]:
    """The outcomes a worker may choose when resolving an alert of this type, the likeliest first.

    An alert about the elder (life-safety, behavioural, vitals) ends with the elder's state; a device's with the
    device's ("device fixed" is no answer to a call button, "elder fine" none to a flat battery).

    >>> outcomes_for("call_button")[:3], outcomes_for("low_battery")[0]
    ((<Outcome.ELDER_FINE: 'elder_fine'>, <Outcome.ASSISTED_AT_HOME: 'assisted_at_home'>, \
<Outcome.SENT_TO_HOSPITAL: 'sent_to_hospital'>), <Outcome.DEVICE_FIXED: 'device_fixed'>)
    """
    return _DEVICE_OUTCOMES if alert_type in _DEVICE_TYPE_VALUES else _PERSON_OUTCOMES
