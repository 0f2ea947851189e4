"""The message catalogue: no Chinese (or English alternative) written into templates, every key in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alerts.notify import AlertView as NoticeView
from alerts.notify import NoticeKind, render_alert
from dashboards.i18n import CATALOGUES, Lang, Translator
from detection.models import AlertType, Severity

TEMPLATES = Path(__file__).resolve().parents[2] / "dashboards" / "templates"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
"""CJK ideographs, CJK punctuation and full-width forms (a ``（`` is as much an inline label as a ``页``)."""
INLINE_EN = re.compile(r"if lang == ['\"]en['\"] else")
LITERAL_KEY = re.compile(r"""\bt\(\s*['"]([a-z_]+(?:\.[a-z_0-9]+)+)['"]""")


def _templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) > 10
    return found


def test_templates_hold_no_inline_chinese_labels() -> None:
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{n}: {line.strip()[:80]}"
        for path in _templates()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CJK.search(line) or INLINE_EN.search(line)
    ]
    assert offenders == [], "move these labels into dashboards/i18n.py:\n" + "\n".join(offenders)


def test_every_key_has_both_languages() -> None:
    zh, en = CATALOGUES["zh"], CATALOGUES["en"]
    assert sorted(set(zh) ^ set(en)) == []
    assert [k for k in zh if not zh[k].strip() or not en[k].strip()] == []
    # the same placeholders on both sides, so neither language fails to format
    fields = re.compile(r"\{(\w+)\}")
    assert [k for k in zh if set(fields.findall(zh[k])) != set(fields.findall(en[k]))] == []
    assert [k for k, v in en.items() if CJK.search(v) and k != "lang.switch"] == []


def test_every_literal_key_used_in_templates_exists() -> None:
    used = {k for path in _templates() for k in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))}
    assert "nav.devices" in used and "worker.one_time" in used
    assert sorted(used - set(CATALOGUES["zh"])) == []


def test_kind_and_age_names() -> None:
    zh, en = Translator("zh"), Translator("en")
    assert (zh.kind("door"), en.kind("door"), en.kind("robot")) == ("门磁", "door contact", "robot")
    assert (zh.ago(30), zh.ago(5400), en.ago(90_000)) == ("30 秒前", "1 小时前", "1 d ago")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_phone_and_console_name_every_alert_alike(lang: Lang) -> None:
    # The notification a worker reads on the phone and the console's queue must call an alert the same thing.
    t = Translator(lang)
    for alert_type in AlertType:
        for severity in Severity:
            view = NoticeView(
                alert_id=1, type=alert_type, severity=severity, raised_ms=0, count=1, state="open",
                explanation="x", explanation_zh="x", site="h1", address="a", community="c", resident_name="r",
            )  # fmt: skip
            msg = render_alert(view, kind=NoticeKind.INITIAL, ack_url=None, page_url=None, link_ttl_s=600, lang=lang)
            title = msg.title.casefold()
            assert t.alert_type(alert_type.value).casefold() in title, (alert_type, msg.title)
            assert t(f"alert.severity.{severity.value}").casefold() in title, (severity, msg.title)
