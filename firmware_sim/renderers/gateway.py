"""The home gateway: retained online status every 4 min, its Last Will after an outage, online again after it."""

from __future__ import annotations

from firmware_sim.renderers.home import GATEWAY, GATEWAY_HEARTBEAT_MS, WILL_DELAY_MS, Home, Out
from firmware_sim.wire import (
    WireMessage,
    encode_gateway_online,
    gateway_online_payload,
    gateway_will,
    status_topic,
)


def render(home: Home, out: Out, c0: int, c1: int) -> None:
    """Messages of this device with device time in ``[c0, c1)``, added to ``out``."""
    w = home.wire
    if c0 == home.plan.start_ms:
        out.add(
            c0,
            encode_gateway_online(**w.gateway_stamp(), ts=c0, fw="gw-2.4.1", uptime_s=(c0 - home.gw_boot) // 1000),
            GATEWAY,
        )
    down = home.fx.outages
    status = status_topic(home.site, home.spec.gateway)
    gw, boot = home.spec.gateway, home.gw_boot
    for t in home.grid(c0, c1, GATEWAY_HEARTBEAT_MS, home.gw_phase).tolist():
        if down and any(a <= t < b for a, b, _ in down):
            continue
        payload = gateway_online_payload(seq=w.next_seq(gw), ts=t, fw="gw-2.4.1", uptime_s=(t - boot) // 1000)
        out.add(t, WireMessage(status, payload, retain=True), GATEWAY)
    for a, b, why in down:
        if c0 <= a < c1 and b - a > WILL_DELAY_MS:
            will_at = a + WILL_DELAY_MS + int(home.rng.integers(0, 5000))
            out.add(a, gateway_will(site=home.site, gateway=home.spec.gateway), GATEWAY, release=will_at)
        if c0 <= b < c1:
            if why == "reboot":
                home.gw_boot = b - 15_000
            out.add(
                b,
                encode_gateway_online(**w.gateway_stamp(), ts=b, fw="gw-2.4.1", uptime_s=(b - home.gw_boot) // 1000),
                GATEWAY,
            )
