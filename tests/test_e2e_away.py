"""Away notices (外出报备) end to end on real components (broker, influxd, store, backend).

A notice registered in the store reaches the running engine: the elder goes out and the out-not-back rule fires
(seconds-scale thresholds) but nobody is paged, while an SOS from the wristband still is. The elder comes back for
good (inside longer than a visit): the backend ends the notice in the store as the system, audited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from support.backend import until
from support.checkin import AWAY

from alerts.notices import SYSTEM
from alerts.store.away import AwayStore
from detection.models import AlertType
from eldercare.backend import Backend
from eldercare.stack import Broker
from firmware_sim.home_gateway import GatewayPublisher
from firmware_sim.wire import encode_door_event, encode_motion_event, encode_wristband_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def backend(detect_backend: Callable[..., Awaitable[Backend]]) -> Backend:
    return await detect_backend(AWAY, notice_sync_s=0.2)


def _now() -> int:
    return int(time.time() * 1000)


async def test_an_away_notice_holds_the_out_not_back_page_not_an_sos_and_ends_when_the_elder_is_back(
    backend: Backend, broker: Broker, unique_site: str
) -> None:
    site = unique_site
    away = AwayStore(backend.store)  # the console's side of the store
    now = _now()
    notice = away.register(
        site=site, starts_ms=now, ends_ms=now + 3 * 86_400_000, reason="住女儿家", by_id="W01", by_name="王网格员",
        now_ms=now,
    )  # fmt: skip
    engine = backend.engine
    assert engine is not None
    with GatewayPublisher(site=site, password=broker.gateway_password(site), port=broker.port) as gw:
        st = gw.wire.stamp
        gw.publish_all([encode_motion_event(**st("pir1"), ts=_now(), room="living")])
        # The store's notice reaches the engine's home within a sync period.
        await until(lambda: site in engine.homes and engine.homes[site].notice_id == notice.id)
        gw.publish_all([
            encode_door_event(**st("door1"), ts=_now() + 500, event="open"),
            encode_door_event(**st("door1"), ts=_now() + 800, event="close"),
        ])  # fmt: skip
        # Out, and not back within the (seconds-scale) limit: the rule fires and is held by the notice.
        home = engine.homes[site]
        await until(lambda: home.notice_held >= 1)
        assert (
            home.away
            and [
                a
                for t in (AlertType.OUT_NOT_BACK, AlertType.NIGHT_DOOR)
                for a in backend.store.list_alerts(site=site, alert_type=t)
            ]
            == []
        )
        # Life-safety is never held: an SOS from the wristband is stored at once.
        gw.publish_all([encode_wristband_event(**st("band1"), ts=_now(), event="sos")])
        await until(lambda: backend.store.list_alerts(site=site, alert_type=AlertType.SOS))
        # Back for good: the door, then movement inside for longer than a visit (6 s here).
        gw.publish_all([encode_door_event(**st("door1"), ts=_now(), event="open")])
        for _ in range(10):
            gw.publish_all([encode_motion_event(**st("pir1"), ts=_now(), room="living")])
            await asyncio.sleep(1.0)
            if away.of_site(site)[0].ended_ms is not None:
                break
    [ended] = await until(lambda: [n for n in away.of_site(site) if n.id == notice.id and n.ended_ms is not None])
    assert ended.ended_by == SYSTEM and "the home shows the elder back" in ended.ended_reason
    assert away.active(_now()) == [] or all(n.site != site for n in away.active(_now()))
    await until(lambda: home.notice_id == 0)  # the store's end reached the engine: watched as usual again
    trail = [e.action for e in backend.store.audit_entries(entity_id=site)]
    assert "away.registered" in trail and "away.ended" in trail
