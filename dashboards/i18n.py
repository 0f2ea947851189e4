"""A small message catalogue: zh-CN by default, English on request (``?lang=en`` or the ``lang`` cookie)."""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
DEFAULT_LANG: Final[Lang] = "zh"

_ZH: Final[dict[str, str]] = {
    "app.title": "独居老人安全守护平台",
    "app.short": "安全守护",
    "nav.console": "告警值守",
    "nav.residents": "服务对象",
    "nav.visits": "探访关爱",
    "nav.stats": "统计监测",
    "nav.registry": "台账管理",
    "nav.logout": "退出",
    "nav.my_alerts": "我的告警",
    "nav.my_residents": "我的老人",
    "lang.switch": "English",
    "login.title": "登录",
    "login.username": "账号",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "账号或密码错误",
    "login.limited": "尝试次数过多，请 {seconds} 秒后再试",
    "console.queue": "告警队列",
    "console.empty": "当前没有待处理告警",
    "console.live": "实时",
    "console.offline": "连接中断，正在重连…",
    "alert.severity.critical": "紧急",
    "alert.severity.warning": "警告",
    "alert.severity.info": "提示",
    "alert.age": "已等待",
    "alert.on_site_due": "到场时限",
    "alert.overdue": "已超时",
    "alert.explanation": "告警说明",
    "alert.history": "处置记录",
    "alert.assignee": "负责人",
    "alert.state": "状态",
    "action.acknowledge": "接单",
    "action.en_route": "派单出发",
    "action.on_site": "已到场",
    "action.resolve": "处置完成",
    "action.assign": "指派",
    "action.note": "备注",
    "action.outcome": "处置结果",
    "action.done": "操作成功",
    "action.invalid": "当前状态不允许此操作",
    "resident.card": "老人档案",
    "resident.name": "姓名",
    "resident.id_number": "身份证号",
    "resident.phone": "电话",
    "resident.address": "住址",
    "resident.categories": "类别",
    "resident.ability": "能力等级",
    "resident.contacts": "紧急联系人",
    "resident.grid_worker": "网格员",
    "resident.devices": "设备",
    "resident.consent": "已签署知情同意",
    "resident.alerts": "告警记录",
    "resident.visits": "探访记录",
    "resident.age": "年龄",
    "device.online": "在线",
    "device.offline": "离线",
    "visit.record": "记录探访",
    "visit.time": "探访时间",
    "visit.outcome": "探访结果",
    "visit.note": "情况说明",
    "visit.due": "本月待探访",
    "visit.done": "本月已探访",
    "visit.risk": "优先探访（按风险排序）",
    "visit.saved": "探访已记录",
    "visit.outcome.well": "情况良好",
    "visit.outcome.needs_help": "需要帮助",
    "visit.outcome.not_home": "未见到本人",
    "visit.outcome.referred": "已转介服务",
    "visit.coverage": "探访覆盖率",
    "risk.score": "风险分",
    "risk.alerts": "近 30 天告警 {n} 次",
    "risk.activity": "活动量下降 {pct}%",
    "risk.routine": "作息异常",
    "feature.wake_min": "起床时间",
    "feature.bed_min": "就寝时间",
    "feature.night_exits": "夜间离床次数",
    "feature.night_hr": "夜间心率",
    "feature.night_rr": "夜间呼吸",
    "feature.activity": "活动量",
    "feature.out_max_min": "外出时长",
    "risk.missed": "已 {days} 天未探访",
    "link.invalid": "链接无效或已过期",
    "link.used": "已完成：{action}",
    "error.not_found": "未找到",
    "error.csrf": "页面已过期，请刷新后重试",
    "chart.hr": "心率 (次/分)",
    "chart.rr": "呼吸 (次/分)",
    "chart.bed": "在床",
    "chart.door": "开门次数",
    "chart.motion": "活动次数",
    "chart.baseline": "个人基线",
    "chart.floor": "安全范围（基线学习中）",
    "chart.title": "体征与活动",
    "common.save": "保存",
    "common.back": "返回",
    "common.none": "无",
    "common.minutes": "分钟",
}

_EN: Final[dict[str, str]] = {
    "app.title": "Safe-at-Home Elder Care",
    "app.short": "Safe at Home",
    "nav.console": "Alert console",
    "nav.residents": "Residents",
    "nav.visits": "Care visits",
    "nav.stats": "Statistics",
    "nav.registry": "Registry",
    "nav.logout": "Log out",
    "nav.my_alerts": "My alerts",
    "nav.my_residents": "My residents",
    "lang.switch": "中文",
    "login.title": "Log in",
    "login.username": "Account",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Wrong account or password",
    "login.limited": "Too many attempts; try again in {seconds} s",
    "console.queue": "Alert queue",
    "console.empty": "No open alerts",
    "console.live": "Live",
    "console.offline": "Connection lost, reconnecting…",
    "alert.severity.critical": "Critical",
    "alert.severity.warning": "Warning",
    "alert.severity.info": "Info",
    "alert.age": "Waiting",
    "alert.on_site_due": "On site within",
    "alert.overdue": "Overdue",
    "alert.explanation": "Explanation",
    "alert.history": "History",
    "alert.assignee": "Assigned to",
    "alert.state": "State",
    "action.acknowledge": "Acknowledge",
    "action.en_route": "Dispatch",
    "action.on_site": "Arrived",
    "action.resolve": "Resolve",
    "action.assign": "Assign",
    "action.note": "Note",
    "action.outcome": "Outcome",
    "action.done": "Done",
    "action.invalid": "Not allowed in the current state",
    "resident.card": "Resident",
    "resident.name": "Name",
    "resident.id_number": "ID number",
    "resident.phone": "Phone",
    "resident.address": "Address",
    "resident.categories": "Categories",
    "resident.ability": "Ability level",
    "resident.contacts": "Emergency contacts",
    "resident.grid_worker": "Grid worker",
    "resident.devices": "Devices",
    "resident.consent": "Consent signed",
    "resident.alerts": "Alerts",
    "resident.visits": "Visits",
    "resident.age": "Age",
    "device.online": "online",
    "device.offline": "offline",
    "visit.record": "Record a visit",
    "visit.time": "Time",
    "visit.outcome": "Outcome",
    "visit.note": "Note",
    "visit.due": "Due this month",
    "visit.done": "Visited this month",
    "visit.risk": "Visit first (ranked by risk)",
    "visit.saved": "Visit recorded",
    "visit.outcome.well": "Doing well",
    "visit.outcome.needs_help": "Needs help",
    "visit.outcome.not_home": "Not at home",
    "visit.outcome.referred": "Referred to a service",
    "visit.coverage": "Visit coverage",
    "risk.score": "Risk",
    "risk.alerts": "{n} alerts in 30 days",
    "risk.activity": "activity down {pct}%",
    "risk.routine": "unusual day",
    "feature.wake_min": "wake time",
    "feature.bed_min": "bedtime",
    "feature.night_exits": "night bed exits",
    "feature.night_hr": "night heart rate",
    "feature.night_rr": "night breathing",
    "feature.activity": "activity",
    "feature.out_max_min": "time out",
    "risk.missed": "not visited for {days} days",
    "link.invalid": "This link is invalid or has expired",
    "link.used": "Done: {action}",
    "error.not_found": "Not found",
    "error.csrf": "The page expired; reload and try again",
    "chart.hr": "Heart rate (bpm)",
    "chart.rr": "Breathing (/min)",
    "chart.bed": "In bed",
    "chart.door": "Door openings",
    "chart.motion": "Motion",
    "chart.baseline": "Personal baseline",
    "chart.floor": "Safety range (baseline still learning)",
    "chart.title": "Vitals and activity",
    "common.save": "Save",
    "common.back": "Back",
    "common.none": "None",
    "common.minutes": "min",
}

# Domain vocabularies that have a fixed Chinese term in the seed plans / GB/T 42195-2022.
_TERMS_EN: Final[dict[str, str]] = {
    "独居": "living alone",
    "空巢": "empty nest",
    "留守": "left behind",
    "失能": "disabled",
    "半失能": "partly disabled",
    "失智": "dementia",
    "高龄": "advanced age",
    "特困": "extreme poverty",
    "低保": "subsistence allowance",
    "计划生育特殊家庭": "family-planning special family",
    "重残": "severe disability",
}

ABILITY_ZH: Final[tuple[str, ...]] = ("能力完好", "轻度失能", "中度失能", "重度失能", "完全失能")
ABILITY_EN: Final[tuple[str, ...]] = (
    "intact",
    "mildly impaired",
    "moderately impaired",
    "severely impaired",
    "fully impaired",
)

ALERT_TYPE_ZH: Final[dict[str, str]] = {
    "sos": "紧急呼叫",
    "call_button": "一键呼叫",
    "fall": "跌倒",
    "smoke": "烟雾报警",
    "vitals_critical": "生命体征危急",
    "apnea": "呼吸暂停",
    "night_bed_exit": "夜间离床未归",
    "inactivity": "长时间无活动",
    "not_up": "晨起异常",
    "night_door": "夜间外出",
    "out_not_back": "外出未归",
    "vitals_trend": "体征趋势异常",
    "device_offline": "设备离线",
    "site_offline": "网关离线",
    "low_battery": "电量低",
    "tamper": "设备被拆",
    "not_worn": "手环未佩戴",
    "device_fault": "设备故障",
}

STATE_EN: Final[dict[str, str]] = {
    "open": "open",
    "acknowledged": "acknowledged",
    "en_route": "en route",
    "on_site": "on site",
    "resolved": "resolved",
    "cleared": "cleared",
}

CATALOGUES: Final[dict[Lang, dict[str, str]]] = {"zh": _ZH, "en": _EN}


def pick_language(query: str | None, cookie: str | None) -> Lang:
    """Language from the query parameter, else the cookie, else zh.

    >>> pick_language(None, "en"), pick_language("zh", "en"), pick_language("xx", None)
    ('en', 'zh', 'zh')
    """
    for value in (query, cookie):
        if value in LANGS:
            return value  # type: ignore[return-value]
    return DEFAULT_LANG


class Translator:
    """Callable bound to one language, used as ``t("key", n=3)`` in templates."""

    __slots__ = ("lang",)

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang

    def __call__(self, key: str, **values: object) -> str:
        """Look up ``key``; fall back to zh, then to the key itself, so a gap never breaks a page."""
        text = CATALOGUES[self.lang].get(key) or _ZH.get(key) or key
        return text.format(**values) if values else text

    def term(self, zh_term: str) -> str:
        """A seed-plan category term in the current language."""
        return zh_term if self.lang == "zh" else _TERMS_EN.get(zh_term, zh_term)

    def alert_type(self, value: str) -> str:
        """Name of an alert type."""
        return ALERT_TYPE_ZH.get(value, value) if self.lang == "zh" else value.replace("_", " ")

    def state(self, value: str) -> str:
        """Name of an alert state."""
        if self.lang == "en":
            return STATE_EN.get(value, value)
        from alerts.lifecycle import STATE_ZH, State

        return STATE_ZH.get(State(value), value)

    def outcome(self, value: str) -> str:
        """Name of an alert outcome (or of the state of an alert without one)."""
        if value in STATE_EN:
            return self.state(value)
        if self.lang == "en":
            return value.replace("_", " ")
        from alerts.lifecycle import OUTCOME_ZH, Outcome

        try:
            return OUTCOME_ZH[Outcome(value)]
        except ValueError:
            return value

    def ability(self, level: int) -> str:
        """GB/T 42195-2022 ability level name."""
        names = ABILITY_ZH if self.lang == "zh" else ABILITY_EN
        return f"{level} {names[level]}" if 0 <= level < len(names) else str(level)
