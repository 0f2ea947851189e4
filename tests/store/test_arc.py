"""The ARC output (alerts/arc/): DC-09 frames, and the alert service delivering to a real TCP receiver.

The receiver (tests/support/arc_receiver.py) is written from the spec and shares no code with the sender.
"""

from __future__ import annotations

import asyncio
import doctest
import logging
import socket
from typing import Any

import msgspec
import pytest
from store_helpers import FakeClock, Webhook, make_service, registry_with_channels
from support.arc_receiver import ArcReceiver, arc_crc

import alerts.arc.dc09
from alerts.arc.channel import ArcChannel, seq_of
from alerts.arc.client import ArcClient
from alerts.arc.dc09 import contact_id, crc16, frame, parse_key, parse_response
from alerts.arc.errors import DeliveryError, FrameError
from alerts.arc.events import ArcConfig
from alerts.lifecycle import Action, Channel, Outcome
from alerts.service import AlertService
from alerts.store.repository import AlertStore
from detection.models import Alert, AlertType, Severity
from eldercare.backend import arc_config as arc_config_from
from eldercare.servers._child import free_port
from eldercare.settings import Settings


def life_safety(time_ms: int, kind: AlertType = AlertType.SOS, *, clears: bool = False) -> Alert:
    return Alert(
        site="h0001", type=kind, severity=Severity.CRITICAL, time_ms=time_ms, device="band1", clears=clears,
        explanation=f"{kind} on band1", explanation_zh=f"{kind} band1",
    )  # fmt: skip


def arc_config(port: int, **kw: object) -> ArcConfig:
    return ArcConfig(host="127.0.0.1", port=port, accounts={"h0001": "1234"}, timeout_s=10.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def setup(store: AlertStore, webhook: Webhook, clock: FakeClock) -> AlertStore:
    store.import_registry(registry_with_channels(webhook), now_ms=clock())
    return store


def service_with_arc(store: AlertStore, clock: FakeClock, config: ArcConfig) -> tuple[AlertService, ArcChannel]:
    arc = ArcChannel(store=store, config=config, clock=clock)
    return make_service(store, clock, arc=arc), arc


# ---------------------------------------------------------------------------------------------- frames


@pytest.mark.parametrize(
    ("seq", "data", "expected"),
    [  # research/devices_interop.md §4, checked there with pysiaalarm's parser
        (1, "#1234|1101 01 015", b'\n21440027"ADM-CID"0001L0#1234[#1234|1101 01 015]\r'),
        (2, "#1234|1120 01 016", b'\n4CE90027"ADM-CID"0002L0#1234[#1234|1120 01 016]\r'),
        (3, "#1234|3101 01 015", b'\nA3420027"ADM-CID"0003L0#1234[#1234|3101 01 015]\r'),
    ],
)
def test_frames_match_the_verified_examples(seq: int, data: str, expected: bytes) -> None:
    assert frame(event_id="ADM-CID", seq=seq, account="1234", data=data, timestamp=None) == expected
    assert arc_crc(expected[9:-1]) == crc16(expected[9:-1]) == int(expected[1:5], 16)


def test_contact_id_refuses_what_an_arc_cannot_decode() -> None:
    assert contact_id(account="1234", qualifier=1, code="151", group="01", zone="005") == "#1234|1151 01 005"
    with pytest.raises(ValueError, match="qualifier"):
        contact_id(account="1234", qualifier=2, code="101")
    with pytest.raises(ValueError, match="sequence"):
        frame(event_id="ADM-CID", seq=10000, account="1234", data="", timestamp=None)
    with pytest.raises(ValueError, match="account"):
        frame(event_id="ADM-CID", seq=1, account="12", data="", timestamp=None)
    with pytest.raises(ValueError, match="port"):
        ArcConfig(host="x", port=0)


def test_answers_with_a_bad_crc_or_length_are_refused() -> None:
    body = b'"ACK"0007R0L0#1234[]'
    good = b"\n" + f"{crc16(body):04X}0{len(body):03X}".encode() + body + b"\r"
    assert parse_response(good).seq == 7
    with pytest.raises(FrameError) as crc:
        parse_response(good.replace(b"0007", b"0008", 1))
    assert crc.value.reason == "crc"
    with pytest.raises(FrameError) as length:
        parse_response(good[:7] + b"15" + good[9:])
    assert length.value.reason == "length"


def test_dc09_doctests() -> None:
    assert doctest.testmod(alerts.arc.dc09).failed == 0


def test_events_follow_the_code_map_and_accounts() -> None:
    config = ArcConfig(host="h", port=1, account_prefix="12", codes={"fall": "120"})
    assert config.account_for("h0001") == "120001"
    assert config.event_data(site="h0001", alert_type="fall", restore=False) == "#120001|1120 01 003"
    assert config.event_data(site="h0001", alert_type="sos", restore=False) is None  # not in this ARC's code map
    assert ArcConfig(host="h", port=1).account_for("h0001") is None  # no account, no prefix: nothing to send


# ---------------------------------------------------------------------------------------------- the receiver


async def test_the_receiver_detects_a_bad_crc() -> None:
    with ArcReceiver() as arc:
        good = frame(event_id="ADM-CID", seq=5, account="1234", data="#1234|1101 01 001", timestamp=None)
        bad = good.replace(b"1101", b"1111")  # a bit error on the line: CRC no longer matches
        with socket.create_connection(("127.0.0.1", arc.port), timeout=5) as s:
            s.sendall(bad)
            reply = s.recv(200)
        (got,) = arc.wait(1)
        assert not got.crc_ok and got.answer == "NAK"
        assert b'"NAK"' in reply
        # Our client takes a NAK as "not delivered"; a clean frame gets an ACK with its sequence number.
        client = ArcClient(host="127.0.0.1", port=arc.port, timeout_s=10)
        with pytest.raises(DeliveryError) as nak:
            arc.mode, arc.nak_count = "nak", 1
            await client.send(event_id="ADM-CID", seq=6, account="1234", data="#1234|1101 01 001")
        assert nak.value.reason == "nak" and not nak.value.permanent
        ack = await client.send(event_id="ADM-CID", seq=6, account="1234", data="#1234|1101 01 001")
        assert (ack.kind, ack.seq, ack.account) == ("ACK", 6, "1234")
        seen = [(r.crc_ok, r.seq, r.answer) for r in arc.wait(3)]
        assert seen == [(False, 0, "NAK"), (True, 6, "NAK"), (True, 6, "ACK")]


async def test_an_ack_with_a_bad_crc_or_a_duh_is_not_a_delivery() -> None:
    with ArcReceiver(mode="corrupt") as arc:
        client = ArcClient(host="127.0.0.1", port=arc.port, timeout_s=10)
        with pytest.raises(DeliveryError) as corrupt:
            await client.send(event_id="ADM-CID", seq=1, account="1234", data="#1234|1101 01 001")
        assert corrupt.value.reason == "frame"
        arc.mode = "duh"
        with pytest.raises(DeliveryError) as duh:
            await client.send(event_id="ADM-CID", seq=2, account="1234", data="#1234|1101 01 001")
        assert duh.value.reason == "duh" and duh.value.permanent


# ---------------------------------------------------------------------------------------------- the service


async def test_sos_reaches_the_arc_and_its_restore_follows_the_resolve(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    with ArcReceiver() as arc:
        service, channel = service_with_arc(setup, clock, arc_config(arc.port))
        record = await service.raise_alert(life_safety(clock()))
        assert record is not None
        await channel.idle()
        (event,) = arc.wait(1)
        assert event.crc_ok and event.kind == "ADM-CID" and event.account == "1234"
        assert event.contact_id == ("1", "101", "01", "001")  # new event, personal emergency, zone 1 = SOS
        assert event.seq == seq_of([n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"][0].id)
        assert event.timestamp is not None
        webhook.wait(2)  # the workers are told as usual
        await channel.idle()
        await service.transition(record.id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE)
        await service.transition(
            record.id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, outcome=Outcome.ASSISTED_AT_HOME
        )
        await channel.idle()
        restore = arc.wait(2)[1]
        assert restore.contact_id == ("3", "101", "01", "001") and restore.seq != event.seq
        await channel.idle()
        rows = [(n.kind, n.status, n.attempts) for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
        assert rows == [("arc_event", "sent", 1), ("arc_restore", "sent", 1)]


async def test_a_smoke_clear_sends_one_restore_and_resolving_later_sends_none(
    setup: AlertStore, clock: FakeClock
) -> None:
    with ArcReceiver() as arc:
        service, channel = service_with_arc(setup, clock, arc_config(arc.port))
        record = await service.raise_alert(life_safety(clock(), AlertType.SMOKE))
        assert record is not None
        clock.advance(60)
        await service.raise_alert(life_safety(clock(), AlertType.SMOKE, clears=True))
        await channel.idle()
        got = arc.wait(2)
        assert [r.contact_id for r in got] == [("1", "111", "01", "004"), ("3", "111", "01", "004")]
        await service.transition(
            record.id, Action.RESOLVE, actor="W01", channel=Channel.CONSOLE, outcome=Outcome.FALSE_ALARM
        )
        await channel.idle()
        kinds = [n.kind for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
        assert kinds == ["arc_event", "arc_restore"]


async def test_a_nak_is_retried_with_the_same_sequence_until_acknowledged(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    with ArcReceiver(mode="nak", nak_count=2) as arc:
        service, channel = service_with_arc(setup, clock, arc_config(arc.port))
        record = await service.raise_alert(life_safety(clock(), AlertType.GAS))
        assert record is not None
        await channel.idle()
        arc.wait(1)
        for _ in range(2):
            clock.advance(60)  # past the backoff
            await service.tick()
            await channel.idle()
        got = arc.wait(3)
        assert [r.answer for r in got] == ["NAK", "NAK", "ACK"]
        assert {r.seq for r in got} == {got[0].seq} and got[2].contact_id == ("1", "151", "01", "005")
        assert len(webhook.wait(2)) >= 2  # the workers' notifications went out at once, NAKs or not
        (row,) = [n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
        assert (row.status, row.attempts) == ("sent", 3)
        history = [(e.action, e.note or "") for e in setup.events(record.id)]
        assert any(a == "arc_failed" and "ARC delivery failed" in n for a, n in history)
        assert any(a == "arc_delivered" for a, _ in history)


async def test_a_dead_arc_never_holds_up_the_workers_and_the_event_goes_out_when_it_is_back(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    port = free_port()
    service, channel = service_with_arc(setup, clock, arc_config(port))
    record = await service.raise_alert(life_safety(clock(), AlertType.FALL))
    assert record is not None
    assert sorted(m["path"] for m in webhook.wait(2)) == ["/W01", "/W02"]
    await channel.idle()
    (row,) = [n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
    assert row.status == "retry" and row.error is not None and row.error.startswith("connect")
    clock.advance(60)
    await service.tick()
    await channel.idle()
    history = [(e.action, e.note or "") for e in setup.events(record.id)]
    assert [a for a, _ in history if a.startswith("arc")] == ["arc_failed"]
    assert "报警中心投递失败" in history[-1][1]
    with ArcReceiver(port=port) as arc:
        clock.advance(120)
        await service.tick()
        await channel.idle()
        (event,) = arc.wait(1)
        assert event.contact_id == ("1", "101", "01", "003")  # fall coded 101 by default
        await channel.idle()
    (row,) = [n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
    assert row.status == "sent" and row.attempts == 3


async def test_an_event_left_sending_by_a_killed_backend_is_sent_after_the_lease(
    setup: AlertStore, clock: FakeClock
) -> None:
    with ArcReceiver() as arc:
        config = arc_config(arc.port)
        service, channel = service_with_arc(setup, clock, config)
        channel.kick = lambda: None  # type: ignore[method-assign]  # this "backend" dies before it sends
        record = await service.raise_alert(life_safety(clock()))
        assert record is not None
        assert len(setup.claim_notifications(clock(), arc=True, lease_ms=30_000)) == 1  # claimed, then killed
        restarted = ArcChannel(store=setup, config=config, clock=clock)
        assert await restarted.drain() == 0  # still leased to the dead one
        clock.advance(31)
        assert await restarted.drain() == 1
        assert arc.wait(1)[0].contact_id == ("1", "101", "01", "001")


async def test_supervision_and_the_test_event_are_acknowledged() -> None:
    with ArcReceiver() as arc:
        channel = ArcChannel(store=None, config=arc_config(arc.port), clock=lambda: 1_764_000_000_000)  # type: ignore[arg-type]
        link = await channel.supervise()
        assert not isinstance(link, DeliveryError) and link.kind == "ACK"
        ack = await channel.test_event()
        assert ack.kind == "ACK"
        null, test = arc.wait(2)
        assert (null.kind, null.data, null.account) == ("NULL", "", "1234")
        assert test.contact_id == ("1", "602", "00", "000")
    down = await channel.supervise()
    assert isinstance(down, DeliveryError) and down.reason == "connect"
    await asyncio.sleep(0)


async def test_with_the_arc_down_one_refused_connection_ends_the_round_and_nothing_is_counted_twice(
    setup: AlertStore, clock: FakeClock
) -> None:
    port = free_port()
    service, channel = service_with_arc(setup, clock, arc_config(port))
    channel.kick = lambda: None  # type: ignore[method-assign]  # the test drives the rounds
    records = [await service.raise_alert(life_safety(clock(), kind)) for kind in (AlertType.SOS, AlertType.SMOKE)]
    assert all(r is not None for r in records)
    assert await channel.drain() == 0
    rows = [n for n in setup.notifications() if n.channel == "arc"]
    # The first was tried and failed; the second was put back untried, due with the first's retry.
    assert [(n.status, n.attempts) for n in rows] == [("retry", 1), ("retry", 0)]
    assert rows[0].due_ms == rows[1].due_ms == clock() + 5000
    with ArcReceiver(port=port) as arc:
        clock.advance(5)
        assert await channel.drain() == 2
        assert [r.contact_id for r in arc.wait(2)] == [("1", "101", "01", "001"), ("1", "111", "01", "004")]


async def test_a_home_without_an_account_shows_it_in_the_history_and_escalates_after_the_first_message(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    config = ArcConfig(host="127.0.0.1", port=free_port(), accounts={"elsewhere": "9999"}, timeout_s=1.0)
    service, _ = service_with_arc(setup, clock, config)
    record = await service.raise_alert(life_safety(clock()))
    assert record is not None
    (row,) = [n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
    assert row.status == "failed" and row.error == "no ARC account for site h0001"
    assert any(e.action == "arc_failed" and "no ARC account" in (e.note or "") for e in setup.events(record.id))
    # The workers first get the alert, then the "ARC does not have it" notice; the street is told at once.
    sent = [(n.worker_id, n.kind) for n in setup.notifications(alert_id=record.id) if n.channel != "arc"]
    assert sorted(sent) == sorted(
        [("W01", "initial"), ("W02", "initial"), ("W01", "arc_failed"), ("W02", "arc_failed"), ("W03", "escalation")]
    )
    assert [k for _, k in sent][:2] == ["initial", "initial"]
    assert len(webhook.wait(5)) == 5


# ---------------------------------------------------------------------------------------------- failure escalates


async def test_a_failed_arc_delivery_tells_the_workers_and_takes_the_next_escalation_step_at_once(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    port = free_port()  # the ARC's receiver is down
    service, channel = service_with_arc(setup, clock, arc_config(port))
    record = await service.raise_alert(life_safety(clock()))
    assert record is not None
    assert sorted(m["path"] for m in webhook.wait(2)) == ["/W01", "/W02"]  # grid worker and community duty
    await channel.idle()
    clock.advance(60)  # the second failed attempt crosses the threshold (failed_after = 2)
    await service.tick()
    await channel.idle()
    got = webhook.wait(5)
    # The workers already told hear that the ARC does not have it; the street (the policy's next step, due only
    # at 5 min) is told now, as an escalation, instead of 4 minutes later.
    arc_notes = [m for m in got[2:] if "报警中心" in m["title"]]
    assert sorted(m["path"] for m in arc_notes) == ["/W01", "/W02"]
    escalated = [m for m in got[2:] if m["path"] == "/W03"]
    assert len(escalated) == 1 and "升级" in escalated[0]["title"]
    audit = [e for e in setup.audit_entries(entity_id=str(record.id)) if e.action == "alert.arc_escalated"]
    assert len(audit) == 1 and audit[0].detail["roles"] == ["street"]
    kinds = sorted(n.kind for n in setup.notifications(alert_id=record.id) if n.channel != "arc")
    assert kinds.count("arc_failed") == 2 and kinds.count("escalation") == 1
    # The policy's own 5-minute step has been taken: it is not sent a second time (reminders go on, W03 included).
    clock.advance(300)
    await service.tick()
    await channel.idle()
    w03 = [n.kind for n in setup.notifications(alert_id=record.id) if n.worker_id == "W03"]
    assert w03.count("escalation") == 1 and "reminder" in w03


async def test_a_duh_escalates_at_once_and_an_acknowledged_alert_only_tells_its_owner(
    setup: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    with ArcReceiver(mode="duh") as arc:
        service, channel = service_with_arc(setup, clock, arc_config(arc.port))
        channel.kick = lambda: None  # type: ignore[method-assign]  # the test drives the rounds
        record = await service.raise_alert(life_safety(clock()))
        assert record is not None
        webhook.wait(2)
        await service.transition(record.id, Action.ACKNOWLEDGE, actor="W01", channel=Channel.CONSOLE)
        await channel.drain()  # one DUH: permanent, shown at once
        arc.wait(1)
        notes = [n for n in setup.notifications(alert_id=record.id) if n.kind == "arc_failed"]
        # Someone has it already: the owner is told (to phone the ARC or act without it); no escalation step.
        assert [n.worker_id for n in notes] == ["W01"]
        assert not [n for n in setup.notifications(alert_id=record.id) if n.kind == "escalation"]
        audit = [e for e in setup.audit_entries(entity_id=str(record.id)) if e.action == "alert.arc_escalated"]
        assert len(audit) == 1 and audit[0].detail["roles"] == []


# ---------------------------------------------------------------------------------------------- AES

KEY_HEX = "000102030405060708090A0B0C0D0E0F1011121314151617"  # AES-192: the key length is the ARC's choice


async def test_an_encrypted_sos_is_decrypted_and_acknowledged_by_the_receiver(
    setup: AlertStore, clock: FakeClock
) -> None:
    key = parse_key(KEY_HEX)
    with ArcReceiver(key=key) as arc:
        arc_channel = ArcChannel(store=setup, config=arc_config(arc.port), clock=clock, key=key)
        service = make_service(setup, clock, arc=arc_channel)
        record = await service.raise_alert(life_safety(clock()))
        assert record is not None
        await arc_channel.idle()
        (event,) = arc.wait(1)
        assert event.encrypted and event.raw[9:19] == b'"*ADM-CID"' and b"1101" not in event.raw  # nothing in clear
        assert event.contact_id == ("1", "101", "01", "001") and event.answer == "ACK" and event.timestamp
        (row,) = [n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
        assert (row.status, row.attempts) == ("sent", 1)  # our client decrypted the receiver's "*ACK"


async def test_with_the_wrong_key_the_receiver_naks_and_the_failure_escalates(
    setup: AlertStore, webhook: Webhook, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ArcReceiver(key=parse_key("FF" * 16)) as arc:
        arc_channel = ArcChannel(store=setup, config=arc_config(arc.port), clock=clock, key=parse_key("11" * 16))
        service = make_service(setup, clock, arc=arc_channel)
        record = await service.raise_alert(life_safety(clock(), AlertType.GAS))
        assert record is not None
        await arc_channel.idle()
        clock.advance(60)
        await service.tick()
        await arc_channel.idle()
        got = arc.wait(2)
        assert [(r.answer, r.why) for r in got] == [("NAK", "decrypt"), ("NAK", "decrypt")]
        (row,) = [n for n in setup.notifications(alert_id=record.id) if n.channel == "arc"]
        assert row.status == "retry" and row.error is not None and row.error.startswith("nak")
        assert any(e.action == "arc_failed" for e in setup.events(record.id))
        assert [n.worker_id for n in setup.notifications(alert_id=record.id) if n.kind == "arc_failed"]
    assert "1111111111" not in caplog.text and "FFFFFFFFFF" not in caplog.text.upper()  # keys are never logged


async def test_a_stale_timestamp_is_nakked_and_the_retry_follows_the_receivers_clock() -> None:
    key = parse_key(KEY_HEX)
    with ArcReceiver(key=key, clock_offset_s=120) as arc:  # the receiver's clock is 2 min ahead of ours
        client = ArcClient(host="127.0.0.1", port=arc.port, timeout_s=10, key=key)
        with pytest.raises(DeliveryError) as nak:
            await client.send(event_id="ADM-CID", seq=9, account="1234", data="#1234|1101 01 001")
        assert nak.value.reason == "nak"
        assert 100 < client.offset_s < 140  # learnt from the NAK's timestamp
        ack = await client.send(event_id="ADM-CID", seq=9, account="1234", data="#1234|1101 01 001")
        assert (ack.kind, ack.seq, ack.encrypted) == ("ACK", 9, True)
        assert [(r.answer, r.why) for r in arc.wait(2)] == [("NAK", "stale"), ("ACK", "")]


async def test_a_plain_ack_to_an_encrypted_message_or_an_encrypted_one_without_our_key_is_no_delivery() -> None:
    key = parse_key(KEY_HEX)
    with ArcReceiver(key=key) as arc:
        plain = ArcClient(host="127.0.0.1", port=arc.port, timeout_s=10)
        ack = await plain.send(event_id="ADM-CID", seq=3, account="1234", data="#1234|1101 01 001")
        assert not ack.encrypted  # a plain message gets a plain answer
    body = b'"ACK"0004R0L0#1234[]'
    plain_ack = b"\n" + f"{crc16(body):04X}0{len(body):03X}".encode() + body + b"\r"
    assert not parse_response(plain_ack, key=key).encrypted  # the client refuses it ("mismatch"), see client.py
    enc = frame(
        event_id="ADM-CID", seq=4, account="1234", data="#1234|1101 01 001", key=key, timestamp="_10:00:00,11-25-2025"
    )
    with pytest.raises(FrameError) as no_key:
        parse_response(enc.replace(b'"*ADM-CID"', b'"*ACK"').replace(b"0004L0", b"0004R0L0"))
    assert no_key.value.reason in ("encrypted", "length", "crc")


def test_a_bad_key_setting_fails_fast_without_showing_the_key() -> None:
    with pytest.raises(ValueError, match="32, 48 or 64 hex digits") as bad:
        Settings(arc_host="127.0.0.1", arc_port=12000, arc_key="C0FFEE" * 5)  # type: ignore[arg-type]
    assert "C0FFEE" not in str(bad.value)
    assert Settings(arc_key=KEY_HEX).arc_key.get_secret_value() == KEY_HEX  # type: ignore[arg-type]
    assert KEY_HEX not in repr(Settings(arc_key=KEY_HEX))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- accounts


def two_communities(webhook: Webhook) -> dict[str, Any]:
    """The example registry plus a second community (C02, grid G02) with two homes."""
    doc = registry_with_channels(webhook)
    doc["communities"].append({"id": "C02", "name": "和平社区", "street": "S01"})
    doc["grids"].append({"id": "G02", "name": "第二网格", "community": "C02"})
    for site in ("h0002", "h0003"):
        doc["sites"].append(
            {"site": site, "gateway": f"gw-{site}", "grid": "G02", "address": f"和平路 {site[-1]} 号", "devices": []}
        )
    return doc


async def test_homes_in_different_communities_report_under_their_communitys_account_with_a_per_home_override(
    store: AlertStore, webhook: Webhook, clock: FakeClock
) -> None:
    store.import_registry(two_communities(webhook), now_ms=clock())
    config = ArcConfig(
        host="127.0.0.1", port=1, timeout_s=10.0, community_accounts={"C01": "5101", "C02": "5102"},
        accounts={"h0003": "7003"},
    )  # fmt: skip
    with ArcReceiver() as arc:
        config = msgspec.structs.replace(config, port=arc.port)
        service, channel = service_with_arc(store, clock, config)
        for site in ("h0001", "h0002", "h0003"):
            alert = msgspec.structs.replace(life_safety(clock()), site=site)
            assert await service.raise_alert(alert) is not None
            await channel.idle()
        got = arc.wait(3)
    assert [(r.account, r.data.split("|")[0]) for r in got] == [("5101", "#5101"), ("5102", "#5102"), ("7003", "#7003")]
    assert all(r.contact_id == ("1", "101", "01", "001") for r in got)


def test_community_accounts_are_checked_and_explained() -> None:
    config = ArcConfig(host="h", port=1, community_accounts={"C01": "5101"}, account_prefix="12")
    assert config.account_for("h0001", community="C01") == "5101"
    assert config.account_for("h0001", community="C09") == "120001"  # not listed: the prefix rule
    assert config.account_for("h0001", community=None) == "120001"
    with pytest.raises(ValueError, match="community C01"):
        ArcConfig(host="h", port=1, community_accounts={"C01": "51-01"})


def test_the_account_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELDERCARE_ARC_HOST", "127.0.0.1")
    monkeypatch.setenv("ELDERCARE_ARC_PORT", "12000")
    monkeypatch.setenv("ELDERCARE_ARC_COMMUNITY_ACCOUNTS", '{"C01": "5101", "C02": "5102"}')
    monkeypatch.setenv("ELDERCARE_ARC_ACCOUNTS", '{"h0003": "7003"}')
    config = arc_config_from(Settings())
    assert config is not None
    accounts = [config.account_for(s, community=c) for s, c in (("h0001", "C01"), ("h0002", "C02"), ("h0003", "C02"))]
    assert accounts == ["5101", "5102", "7003"]
    monkeypatch.setenv("ELDERCARE_ARC_COMMUNITY_ACCOUNTS", '{"C01": "nope"}')
    with pytest.raises(ValueError, match="community C01"):
        arc_config_from(Settings())
