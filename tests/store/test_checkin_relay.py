"""The check-in relay on the real store: steps recorded once, fresh prompts sent to the home, failures audited."""

from __future__ import annotations

import doctest
import json
from dataclasses import dataclass, field

from store_helpers import DAYTIME, FakeClock, load_registry_example

from alerts.checkins import CheckInRelay
from alerts.store.checkins import CheckInStore
from alerts.store.repository import AlertStore
from detection.config import DetectConfig
from detection.models import CheckIn

MIN = 60_000


@dataclass
class Recorder:
    """A downlink publisher that records what it was asked to send (or fails when told to)."""

    fail: bool = False
    sent: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    async def publish(self, topic: str, payload: bytes) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((topic, json.loads(payload)))


@dataclass
class FakeEngine:
    """What the relay reads from the engine: its check-in list and its window."""

    checkins: list[CheckIn]
    config: DetectConfig = field(default_factory=lambda: DetectConfig(checkin_window_s=300))


def _prompt(site: str, t: int) -> CheckIn:
    return CheckIn(site=site, time_ms=t, what="prompt", types=("inactivity",), prompt_ms=t, detail="quiet 47 min")


async def test_prompts_are_sent_to_call_buttons_and_wristbands_and_every_step_is_kept_once(
    store: AlertStore, clock: FakeClock
) -> None:
    doc = load_registry_example()
    site = doc["sites"][0]["site"]
    store.import_registry(doc, now_ms=clock())
    out = Recorder()
    relay = CheckInRelay(store=store, commands=out, clock=clock)
    stale = _prompt(site, DAYTIME - 30 * MIN)  # replayed after a restart: its window is long over
    answered = CheckIn(
        site=site, time_ms=DAYTIME - 28 * MIN, what="answered", types=("inactivity",), prompt_ms=stale.prompt_ms
    )
    engine = FakeEngine([stale, answered, _prompt(site, DAYTIME - MIN)])
    relay.drain(engine)
    assert engine.checkins == []  # taken off the engine at once
    await relay.wait()
    topics = sorted(t for t, _ in out.sent)
    assert all(t.endswith("/cmd") for t in topics) and {t.split("/")[3] for t in topics} <= {"call_button", "wristband"}
    assert topics and all(p["cmd"] == "checkin" and p["prompt"] == f"{site}-{DAYTIME - MIN}" for _, p in out.sent)
    assert out.sent[0][1]["window_s"] == 300
    steps = CheckInStore(store)
    assert [s.what for s in steps.for_site(site)] == ["prompt", "answered", "prompt"]
    # The same steps again (a second restart): nothing new, nothing re-sent for the stale one.
    relay.drain(FakeEngine([stale, answered]))
    await relay.wait()
    assert len(steps.for_site(site)) == 3 and len(out.sent) == len(topics)
    assert steps.counts([site], since_ms=0, until_ms=DAYTIME) == {"prompt": 2, "answered": 1, "paged": 0}
    assert steps.counts(["elsewhere"], since_ms=0, until_ms=DAYTIME) == {"prompt": 0, "answered": 0, "paged": 0}
    trail = [(e.action, e.detail.get("cmd")) for e in store.audit_entries(entity_id=site)]
    assert trail.count(("command.sent", "checkin")) == len(topics) and ("checkin.answered", None) in trail


async def test_a_prompt_replayed_after_a_restart_inside_its_window_is_not_asked_again(
    store: AlertStore, clock: FakeClock
) -> None:
    """The backend restarts a minute after a prompt was sent: catching up, the engine raises the same prompt again,
    its window still open. The elder was asked once and is waiting to answer: asking again would double the
    vibration and the spoken question. The prompt is already in the store, so it is not sent again."""
    doc = load_registry_example()
    site = doc["sites"][0]["site"]
    store.import_registry(doc, now_ms=clock())
    before = Recorder()
    first = CheckInRelay(store=store, commands=before, clock=clock)
    first.drain(FakeEngine([_prompt(site, DAYTIME - MIN)]))
    await first.wait()
    assert before.sent  # asked through the home's call button and wristband
    after = Recorder()
    restarted = CheckInRelay(store=store, commands=after, clock=clock)  # a new process, the same store
    restarted.drain(FakeEngine([_prompt(site, DAYTIME - MIN), _prompt(site, DAYTIME)]))
    await restarted.wait()
    assert {p["prompt"] for _, p in after.sent} == {f"{site}-{DAYTIME}"}  # only the new one is sent
    assert [s.what for s in CheckInStore(store).for_site(site)] == ["prompt", "prompt"]


async def test_a_broker_failure_is_audited_and_never_raises(store: AlertStore, clock: FakeClock) -> None:
    doc = load_registry_example()
    site = doc["sites"][0]["site"]
    store.import_registry(doc, now_ms=clock())
    relay = CheckInRelay(store=store, commands=Recorder(fail=True), clock=clock)
    relay.drain(FakeEngine([_prompt(site, DAYTIME)]))
    await relay.wait()
    failed = [e for e in store.audit_entries(entity_id=site) if e.action == "command.failed"]
    assert failed and "broker away" in str(failed[0].detail["error"])
    assert [s.what for s in CheckInStore(store).for_site(site)] == ["prompt"]  # recorded: no answer will page


def test_checkin_doctests() -> None:
    import alerts.checkins
    import alerts.store.checkins

    for module in (alerts.checkins, alerts.store.checkins):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0
