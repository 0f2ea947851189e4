"""Issue 19 in the console: check-in prompts and answers on the resident page and in the statistics, and the
detection core's "what was learned, what is off and why" on the resident page (real store, real engine)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator

import pytest
from dash_fixtures import registry
from dash_helpers import Backend, login
from fastapi.testclient import TestClient

from alerts.learned import LearnedPublisher
from alerts.store.checkins import CheckInStep, CheckInStore
from alerts.store.learned import LearnedStore
from dashboards.app import create_app
from dashboards.listing import local_time
from detection.config import DetectConfig
from detection.engine import Engine
from detection.homes import HomeRegistry
from eldercare.settings import Settings

MIN = 60_000


def _steps(site: str, prompt_ms: int, *after: tuple[str, str]) -> list[CheckInStep]:
    prompt = CheckInStep(site, prompt_ms, prompt_ms, "prompt", ("inactivity",), "No activity for 47 min.")
    return [prompt, *(CheckInStep(site, prompt_ms + 2 * MIN, prompt_ms, w, ("inactivity",), d) for w, d in after)]


@pytest.fixture
def recorded(backend: Backend) -> int:
    """This month: h1 asked twice (answered once, paged once), h2 asked once (answered), h4 (out of C01) once."""
    now = int(time.time() * 1000)
    store = CheckInStore(backend.store)
    steps = [
        *_steps("h1", now - 60 * MIN, ("answered", "motion pir1 (living)")),
        *_steps("h1", now - 30 * MIN, ("paged", "none")),
        *_steps("h2", now - 20 * MIN, ("answered", "call button cancel")),
        *_steps("h4", now - 10 * MIN, ("paged", "help")),
    ]
    assert store.record(steps, now_ms=now) == steps
    assert store.record(steps[:2], now_ms=now) == []  # a restart replays the same steps: recorded once
    return now


@pytest.fixture
def engine() -> Engine:
    """A real engine watching the fixture's homes (population defaults: nothing learned yet); h1 has only a door
    contact and the call button, so the rules that need a bed sensor stay off there, with their reason; h2's resident
    is tagged 重点关注 (close watch)."""
    doc = registry()
    doc["sites"][0]["devices"] = [d for d in doc["sites"][0]["devices"] if d["kind"] != "mattress"]
    doc["sites"][1]["residents"][0]["categories"].append("重点关注")  # h2: close watch
    e = Engine(registry=HomeRegistry.from_mapping(doc), config=DetectConfig())
    e.ensure_homes(int(time.time() * 1000))
    return e


@pytest.fixture
def learned_client(settings: Settings, backend: Backend, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, backend=backend, poll_interval_s=0.05, learned=engine.learned)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def test_statistics_count_prompts_and_answers_beside_pages(client: TestClient, recorded: int) -> None:
    login(client, "W_C1")  # community C01: h1 and h2, not h4
    data = client.get("/api/stats/monthly").json()
    assert (data["checkin_prompts"], data["checkin_answered"], data["checkin_paged"]) == (3, 2, 1)
    assert data["checkin_answer_rate"] == pytest.approx(2 / 3)
    rows = list(csv.reader(io.StringIO(client.get("/api/stats/monthly.csv").text.lstrip("\ufeff"))))
    assert ["checkins", "*", "prompts", "3"] in rows and ["checkins", "*", "answered", "2"] in rows
    assert ["checkins", "*", "paged", "1"] in rows
    page = client.get("/stats").text
    assert 'id="kpi-checkin-prompts">3<' in page and 'id="kpi-checkin-answered">2<' in page
    assert "询问老人" in page
    assert "Check-ins (before a page)" in client.get("/stats?lang=en").text


def test_resident_page_shows_check_ins_and_what_was_learned(
    learned_client: TestClient, recorded: int, engine: Engine
) -> None:
    login(learned_client, "W_C1")
    page = learned_client.get("/residents/R1").text
    assert page.count('class="checkin-prompt"') == 2 and page.count('class="checkin-answered"') == 1
    assert "老人已应答（平安）" in page and "窗口内无应答" in page and "motion pir1 (living)" in page
    # What the engine learned: population defaults for a new home, and the rules its devices cannot support.
    learned = engine.learned("h1")
    assert learned["personal"] is False
    assert 'id="learned-source">人群默认值' in page
    off = learned["off"]
    assert isinstance(off, dict) and "night_bed_exit" in off
    for rule, why in off.items():
        assert f'data-rule="{rule}"' in page and str(why) in page
    assert "所有行为规则均已启用" not in page
    assert 'id="learned-long-lie"' not in page  # h1 has no sensor inside: inactivity is off, ``off`` says why
    # h2 (bed sensor, door, button: no motion sensor outside the bedroom): how late a long lie is found, and why.
    r2 = learned_client.get("/residents/R2").text
    long_lie = r2.split('id="learned-long-lie">')[1].split("</dd>")[0]
    after = engine.learned("h2")["long_lie"]["after_min"]  # type: ignore[index]
    assert f'data-block="midday">中午 {after["midday"] / 60:.1f} 小时' in long_lie
    assert 'data-hint="sparse"' in long_lie and "加装人体红外传感器" in long_lie
    assert 'id="learned-close-watch">重点关注：最长 2 小时即提醒' in long_lie
    assert after["afternoon"] <= 120 + 5  # the close-watch backstop plus the check-in window
    r2_en = learned_client.get("/residents/R2?lang=en").text
    assert "A long lie (e.g. after a fall) reaches the grid worker after at most" in r2_en
    assert "a wristband with fall detection" in r2_en and "Close watch: paged after at most 2 h" in r2_en
    en = learned_client.get("/residents/R1?lang=en").text
    assert "What was learned" in en and "population defaults" in en and "Answered (elder fine)" in en


def test_resident_page_without_an_engine_says_so(client: TestClient, recorded: int) -> None:
    login(client, "W_C1")
    page = client.get("/residents/R1").text
    assert 'id="learned-none"' in page and page.count('class="checkin-prompt"') == 2


async def test_a_console_of_its_own_shows_what_the_backend_saved_it_learned(
    client: TestClient, backend: Backend, engine: Engine
) -> None:
    """The shipped layout runs the console apart from the engine: the backend's publisher saves ``Engine.learned``
    in the store, the console (no ``learned`` given) shows it with the time it was saved; a home not saved yet
    still says so, and a profile that did not change is not written again."""
    login(client, "W_C1")
    assert 'id="learned-none"' in client.get("/residents/R1").text
    saved_at = int(time.time() * 1000) - 3 * MIN
    publisher = LearnedPublisher(LearnedStore(backend.store), clock=lambda: saved_at, per_pass=1)
    assert [await publisher.publish([engine]) for _ in engine.homes] == [1] * len(engine.homes)  # one per pass
    page = client.get("/residents/R1").text
    assert 'id="learned-none"' not in page and 'id="learned-source">人群默认值' in page
    for rule, why in engine.learned("h1")["off"].items():  # type: ignore[union-attr]
        assert f'data-rule="{rule}"' in page and str(why) in page
    assert f'id="learned-saved">检测引擎于 {local_time(saved_at)} 保存' in page
    assert "As saved by the detection engine at" in client.get("/residents/R1?lang=en").text
    # The next round over every home writes nothing: nothing changed.
    assert sum([await publisher.publish([engine]) for _ in engine.homes]) == 0


def test_check_ins_of_other_homes_stay_off_the_page(client: TestClient, recorded: int) -> None:
    login(client, "W_C1")
    page = client.get("/residents/R2").text
    assert page.count('class="checkin-prompt"') == 1 and "call button cancel" in page
    section = page.split('id="checkins"')[1].split("</section>")[0]
    assert "老人按键求助" not in section and "checkin-paged" not in section  # h4's and h1's pages are not R2's


def test_resident_page_shows_the_alarm_fatigue_tuning_suggestion(settings: Settings, backend: Backend) -> None:
    e = Engine(registry=HomeRegistry.from_mapping(registry()), config=DetectConfig(fatigue_budget_per_month=2))
    now = int(time.time() * 1000)
    e.ensure_homes(now)
    home = e.homes["h1"]  # as if it had paged 9 inactivity alerts this month: widened twice
    home.fatigue_pages = [(now - i * 3_600_000, "inactivity") for i in range(9)]
    home.fatigue_inactivity_steps = 2
    app = create_app(settings, backend=backend, poll_interval_s=0.05, learned=e.learned)
    with TestClient(app, base_url="http://testserver") as c:
        login(c, "W_C1")
        page = c.get("/residents/R1").text
        assert 'id="learned-fatigue"' in page
        assert "本户 30 天内提醒 9 次无活动（预算 2 次）" in page and "168 分钟放宽到 240 分钟（上限 240 分钟）" in page
        en = c.get("/residents/R1?lang=en").text
        assert "This home paged 9 inactivity alerts in 30 days (budget 2)" in en
        assert 'id="learned-changes"' not in page  # nothing refitted yet: no "what changed"
        assert "raised from 168 min to 240 min within the 240 min ceiling"  # 168 × 5/3 clipped in en


def test_resident_page_shows_what_changed_in_the_learned_limits(settings: Settings, backend: Backend) -> None:
    """Issue 19 item 2: the resident page shows what was learned and what changed (from the engine's refits)."""
    import msgspec

    e = Engine(registry=HomeRegistry.from_mapping(registry()), config=DetectConfig())
    now = int(time.time() * 1000)
    e.ensure_homes(now)
    home = e.homes["h1"]
    learned = msgspec.structs.replace(
        home.baseline,
        personal=True,
        n_days=9,
        inactivity_limit_min=(*home.baseline.inactivity_limit_min[:3], 95.0, home.baseline.inactivity_limit_min[4]),
        not_up_min=8 * 60 + 40.0,
    )
    e.apply_baselines({"h1": learned})  # the nightly refit
    app = create_app(settings, backend=backend, poll_interval_s=0.05, learned=e.learned)
    with TestClient(app, base_url="http://testserver") as c:
        login(c, "W_C1")
        page = c.get("/residents/R1").text
        section = page.split('id="learned-changes"')[1].split("</ul>")[0]
        assert "个人历史已足够，开始按本人规律判断" in section
        assert "下午无活动阈值 221 → 95 分钟" in section and "未起床提醒时间 11:00 → 08:40" in section
        en = c.get("/residents/R1?lang=en").text
        assert "afternoon inactivity limit 221 → 95 min" in en and "not-up time 11:00 → 08:40" in en


def test_resident_page_shows_a_weekend_not_up_time_of_its_own(settings: Settings, backend: Backend) -> None:
    """A home that sleeps in at weekends has its own Saturday and Sunday deadline; the page shows both times."""
    import msgspec

    from detection.baseline import WakeGroup

    e = Engine(registry=HomeRegistry.from_mapping(registry()), config=DetectConfig())
    e.ensure_homes(int(time.time() * 1000))
    weekday = WakeGroup(deadline_min=8 * 60 + 34.0, p50_min=420.0, p90_min=454.7, mornings=15)
    weekend = WakeGroup(deadline_min=10 * 60 + 45.0, p50_min=555.0, p90_min=585.0, mornings=4)
    base = msgspec.structs.replace(
        e.homes["h1"].baseline,
        personal=True,
        n_days=19,
        not_up_min=weekday.deadline_min,
        weekday=weekday,
        weekend=weekend,
    )
    e.apply_baselines({"h1": base, "h2": msgspec.structs.replace(base, weekend=weekday)})
    assert e.learned("h1")["not_up_weekend_by"] == "10:45" and e.learned("h2")["not_up_weekend_by"] is None
    app = create_app(settings, backend=backend, poll_interval_s=0.05, learned=e.learned)
    with TestClient(app, base_url="http://testserver") as c:
        login(c, "W_C1")
        assert "08:34 (周末 10:45)" in c.get("/residents/R1").text
        assert "08:34 (weekends 10:45)" in c.get("/residents/R1?lang=en").text


async def test_a_home_that_moved_to_another_worker_and_back_is_saved_again(backend: Backend, engine: Engine) -> None:
    """Clustered: a partition moves to another worker (which saves its homes from then on) and comes back. The
    profile it comes back with is written again even if this worker had saved the very same one before: the store
    may hold the other worker's newer one meanwhile."""
    store = LearnedStore(backend.store)
    publisher = LearnedPublisher(store, clock=lambda: 1_000, per_pass=100)
    assert await publisher.publish([engine]) == len(engine.homes)
    assert await publisher.publish([]) == 0  # handed back: nothing of it is watched here
    store.save([("h1", {"personal": True, "days": 30})], now_ms=2_000)  # the other worker's newer profile
    assert await publisher.publish([engine]) == len(engine.homes)  # back: every home written again
    assert store.load("h1")["personal"] is False and store.load("h1")["saved_ms"] == 1_000
