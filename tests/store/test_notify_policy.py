"""Escalation policy format, per-community overrides, quiet hours and link tokens (pure, no servers)."""

from __future__ import annotations

import json

import pytest
from store_helpers import T0

from alerts.escalation import PolicyBook, Role, initial_timers, plan_due
from alerts.links import LinkSigner
from alerts.notify import AlertView, NoticeKind, render_alert
from alerts.privacy import mask_id_number, mask_phone
from alerts.store.errors import LinkError, PolicyError
from detection.models import AlertType, Severity

BOOK_JSON = {
    "default": {"warning": {"notify": ["grid_worker"], "remind_every_s": 300}},
    "communities": {
        "C01": {
            "critical": {
                "notify": ["grid_worker", "community_duty"],
                "remind_every_s": 60,
                "escalate": [{"after_s": 180, "roles": ["street"]}, {"after_s": 600, "roles": ["district"]}],
                "on_site_within_s": 1200,
            }
        }
    },
    "quiet": {"start": "21:30", "end": "06:30", "digest_at": "07:00"},
}


def test_notify_policy_book_from_json_with_community_override() -> None:
    book = PolicyBook.from_json(json.dumps(BOOK_JSON))
    c01 = book.policy_for(community="C01", alert_type=AlertType.FALL, severity=Severity.CRITICAL)
    other = book.policy_for(community="C02", alert_type=AlertType.FALL, severity=Severity.CRITICAL)
    assert c01.remind_every_s == 60 and other.remind_every_s == 120
    assert [s.roles for s in c01.escalate] == [(Role.STREET,), (Role.DISTRICT,)]
    assert (
        book.policy_for(community=None, alert_type=AlertType.NIGHT_DOOR, severity=Severity.WARNING).remind_every_s
        == 300
    )
    device = book.policy_for(community="C01", alert_type=AlertType.LOW_BATTERY, severity=Severity.WARNING)
    assert device.batch_every_s == 900 and device.quiet_hours
    # a life-safety alert is never batched or muted, even if raised with a low severity
    smoke = book.policy_for(community=None, alert_type=AlertType.SMOKE, severity=Severity.INFO)
    assert smoke.batch_every_s is None and not smoke.quiet_hours
    assert PolicyBook.from_json(book.to_json()) == book


@pytest.mark.parametrize(
    "bad",
    [
        {"default": {"critical": {"quiet_hours": True}}},
        {"default": {"warning": {"escalate": [{"after_s": 600, "roles": ["street"]}, {"after_s": 60, "roles": []}]}}},
        {"default": {"info": {"notify": []}}},
        {"default": {"info": {"notify": ["mayor"]}}},
    ],
)
def test_notify_policy_book_rejects_unsafe_or_malformed(bad: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        PolicyBook.from_json(json.dumps(bad))


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"default": {"critical": {"remind_every": 60}}}, "'default.critical': unknown key 'remind_every'"),
        ({"defaults": {}}, "'book': unknown key 'defaults'"),
        ({"default": {"urgent": {}}}, "'default': unknown key 'urgent'"),
        ({"communities": {"C01": {"warning": {"escalate": [{"after": 60, "roles": ["street"]}]}}}},
         "'communities.C01.warning.escalate[0]': unknown key 'after'"),
        ({"quiet": {"begin": "22:00"}}, "'quiet': unknown key 'begin'"),
        ({"quiet": {"start": "25:00"}}, "'quiet.start': '25:00' is not a time of day"),
        ({"quiet": {"timezone": "Asia/Beijing"}}, "'quiet.timezone': unknown time zone 'Asia/Beijing'"),
        ({"default": {"warning": {"max_reminders": -1}}}, "max_reminders must not be negative"),
        ({"default": {"critical": {"on_site_within_s": 0}}}, "on_site_within_s must be positive"),
        ({"default": {"warning": {"escalate": [{"after_s": 60, "roles": []}]}}}, "must name at least one role"),
        ("[1, 2]", "'book': must be a JSON object"),
        ("{", "not valid JSON"),
    ],
)  # fmt: skip
def test_notify_policy_file_mistakes_are_refused_with_where_they_are(bad: object, where: str) -> None:
    """An operator's typo must not leave a default silently in force: each mistake names its place in the file."""
    with pytest.raises(PolicyError) as refused:
        PolicyBook.from_json(bad if isinstance(bad, str) else json.dumps(bad))
    assert where in str(refused.value)


def test_notify_a_communitys_set_takes_what_it_does_not_name_from_the_files_default() -> None:
    """Before, a community that overrode only its critical policy got the built-in warning policy (10-min
    reminders), not the 5-min one its own file's default set for every community."""
    book = PolicyBook.from_json(json.dumps(BOOK_JSON))
    c01_warning = book.policy_for(community="C01", alert_type=AlertType.NIGHT_DOOR, severity=Severity.WARNING)
    assert c01_warning.remind_every_s == 300
    c01_critical = book.policy_for(community="C01", alert_type=AlertType.FALL, severity=Severity.CRITICAL)
    assert c01_critical.remind_every_s == 60


def test_notify_two_escalation_steps_fire_in_order() -> None:
    book = PolicyBook.from_json(json.dumps(BOOK_JSON))
    policy = book.policy_for(community="C01", alert_type=AlertType.SOS, severity=Severity.CRITICAL)
    timers = initial_timers(policy, 0)
    fired = []
    for second in range(0, 1300, 10):
        timers, work = plan_due(policy, anchor_ms=0, timers=timers, now_ms=second * 1000)
        if work.escalate_roles or work.overdue:
            fired.append((second, [r.value for r in work.escalate_roles], work.overdue))
    assert fired == [(180, ["street"], False), (600, ["district"], False), (1200, [], True)]


def test_notify_quiet_hours_window_and_digest_time() -> None:
    book = PolicyBook.from_json(json.dumps(BOOK_JSON))
    beijing_midnight = T0
    assert book.quiet.is_quiet(beijing_midnight - 30 * 60_000)  # 23:30
    assert not book.quiet.is_quiet(beijing_midnight - 3 * 3600_000)  # 21:00
    assert book.quiet.next_digest_ms(beijing_midnight) == beijing_midnight + 7 * 3600_000


def test_notify_link_tokens_are_single_purpose_and_signed() -> None:
    signer = LinkSigner(secret=b"0123456789abcdef0123", base_url="https://care.example.org/")
    token = signer.token(alert_id=7, worker_id="W01", action="en_route", now_ms=1000)
    claim = signer.verify(token, now_ms=2000, expect="en_route")
    assert (claim.alert_id, claim.worker_id, claim.action) == (7, "W01", "en_route")
    assert signer.url(token) == f"https://care.example.org/m/{token}"
    with pytest.raises(LinkError, match="purpose"):
        signer.verify(token, now_ms=2000, expect="resolve")
    with pytest.raises(LinkError, match="expired"):
        signer.verify(token, now_ms=1000 + 2 * 3600 * 1000)
    for broken in ("", "abc", token.replace(".", ""), token + "x", "e30." + token.split(".")[1]):
        with pytest.raises(LinkError):
            signer.verify(broken, now_ms=2000)
    with pytest.raises(ValueError):
        LinkSigner(secret=b"short", base_url="x")
    assert signer.token(alert_id=7, worker_id="W01", action="en_route", now_ms=1000) != token  # unique nonce


def test_notify_message_template_chinese_and_english() -> None:
    view = AlertView(
        alert_id=12, type=AlertType.FALL, severity=Severity.CRITICAL, raised_ms=T0 + 8 * 3600_000, count=1,
        state="open", explanation="Fall detected by band1", explanation_zh="手环检测到跌倒", site="h0001",
        address="幸福路 12 号", community="幸福社区", resident_name="张桂英",
    )  # fmt: skip
    zh = render_alert(
        view, kind=NoticeKind.REMINDER, ack_url="https://x/m/a", page_url="https://x/m/p", link_ttl_s=7200
    )
    assert zh.title == "【紧急】张桂英 疑似跌倒（提醒：尚无人接单）"
    assert "时间：2025-11-25 08:00（北京时间）" in zh.body and "一键接单：https://x/m/a" in zh.body
    assert "120 分钟内有效" in zh.body
    en = render_alert(view, kind=NoticeKind.INITIAL, ack_url=None, page_url="https://x/m/p", link_ttl_s=600, lang="en")
    assert en.title.startswith("[CRITICAL] fall") and "Acknowledge" not in en.body


def test_notify_privacy_masks() -> None:
    assert mask_id_number("11010119400101002X") == "1101**********002X"
    assert mask_phone("13900000001") == "139****0001"
    assert mask_phone(None) == ""
