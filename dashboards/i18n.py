"""A small message catalogue: zh-CN by default, English on request (``?lang=en`` or the ``lang`` cookie)."""

from __future__ import annotations

from typing import Final, Literal

from alerts.labels import ALERT_TYPES, DEVICE_KINDS, OUTCOMES, SEVERITIES, STATES, label

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
    "error.officers_only": "此页面仅限值班人员使用",
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
    "common.all": "全部",
    "common.filter": "筛选",
    "common.reset": "重置",
    "common.cancel": "取消",
    "common.paren": "{name}（{detail}）",
    "nav.devices": "设备管理",
    "nav.workers": "人员管理",
    "nav.my_devices": "设备",
    "device.late": "迟报",
    "device.unseen": "未见上报",
    "device.status": "状态",
    "device.device": "设备",
    "device.kind": "类型",
    "device.home": "住所",
    "device.community": "社区",
    "device.gateway": "网关",
    "device.last_seen": "最近上报",
    "device.battery": "电量",
    "device.open_alerts": "未处理告警",
    "device.all": "查看全部设备",
    "device.source.telemetry": (
        "状态来源：遥测数据（InfluxDB 最近上报时间，按设备类型的上报周期判断；{days} 天内无数据记为未见上报）"
    ),
    "device.source.alerts": "状态来源：未处理的离线告警（未配置或无法连接遥测数据库）",
    "ago.s": "{n} 秒前",
    "ago.m": "{n} 分钟前",
    "ago.h": "{n} 小时前",
    "ago.d": "{n} 天前",
    "gateway.provision": "开通网关（MQTT 账号）",
    "gateway.provisioned": "网关已开通。请在网关中填写以下信息（密码仅显示一次）。",
    "gateway.user": "MQTT 用户名",
    "gateway.password": "密码",
    "gateway.topics": "主题",
    "registry.hierarchy": "区 → 街道 → 社区 → 网格",
    "registry.residents_n": "{n} 人",
    "registry.workers": "工作人员",
    "registry.import": "CSV 导入服务对象",
    "registry.columns": "列",
    "registry.dry_run": "仅校验（试运行）",
    "registry.upload": "上传",
    "registry.export": "导出 CSV",
    "registry.dry_run_result": "试运行",
    "registry.good_rows": "{n} 行有效",
    "registry.imported": "已导入",
    "registry.errors": "{n} 处错误",
    "registry.line": "行",
    "registry.column": "列",
    "registry.reason": "原因",
    "stats.printable": "月度报表（可打印）",
    "stats.alerts": "告警总数",
    "stats.devices_online": "设备在线率",
    "stats.target": "目标",
    "stats.by_type": "按类型",
    "stats.by_outcome": "按处置结果",
    "stats.response_community": "响应时效（按社区）",
    "stats.response_grid": "响应时效（按网格）",
    "stats.alerts_short": "告警",
    "stats.ack": "接单 p50/p90",
    "stats.on_site": "到场 p50/p90",
    "stats.device_source.telemetry": "按最近上报时间",
    "stats.device_source.alerts": "按离线告警",
    "worker.title": "人员管理",
    "worker.id": "工号",
    "worker.name": "姓名",
    "worker.role": "角色",
    "worker.scope": "负责区域",
    "worker.phone": "手机号",
    "worker.password": "初始密码（留空自动生成）",
    "worker.new_password": "新密码（留空自动生成）",
    "worker.status": "状态",
    "worker.active": "在岗",
    "worker.inactive": "已停用",
    "worker.create": "新增人员",
    "worker.created": "已新增 {id}",
    "worker.deactivate": "停用",
    "worker.reactivate": "启用",
    "worker.deactivated": "已停用 {id}",
    "worker.reactivated": "已启用 {id}",
    "worker.reset": "重置密码",
    "worker.password_set": "{id} 的密码已设置",
    "worker.one_time": "{id} 的一次性密码（仅显示一次，请当面告知并提醒登录后修改）：",
    "worker.self": "不能停用自己的账号",
    "worker.weak": "密码至少 10 位",
    "worker.bad_role": "该角色只能负责对应层级的区域",
    "worker.refused": "无权管理人员",
    "worker.you": "本人",
    "role.admin": "管理员",
    "role.district": "区级值班",
    "role.street": "街道值班",
    "role.community_duty": "社区值班",
    "role.grid_worker": "网格员",
    "worker.taken": "{field}已被使用：{value}",
    "worker.invalid": "信息有误（{field}）：{reason}",
    "worker.actions": "操作",
    "worker.set": "设置",
    "level.district": "区",
    "level.street": "街道",
    "level.community": "社区",
    "level.grid": "网格",
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
    "error.officers_only": "This page is for duty officers only",
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
    "common.all": "All",
    "common.filter": "Filter",
    "common.reset": "Reset",
    "common.cancel": "Cancel",
    "common.paren": "{name} ({detail})",
    "nav.devices": "Devices",
    "nav.workers": "Workers",
    "nav.my_devices": "Devices",
    "device.late": "late",
    "device.unseen": "never seen",
    "device.status": "Status",
    "device.device": "Device",
    "device.kind": "Kind",
    "device.home": "Home",
    "device.community": "Community",
    "device.gateway": "Gateway",
    "device.last_seen": "Last seen",
    "device.battery": "Battery",
    "device.open_alerts": "Open alerts",
    "device.all": "All devices",
    "device.source.telemetry": (
        "Status from telemetry (last message in InfluxDB against each kind's reporting cadence; "
        "nothing in {days} days counts as never seen)"
    ),
    "device.source.alerts": "Status from open offline alerts (telemetry not configured or unreachable)",
    "ago.s": "{n} s ago",
    "ago.m": "{n} min ago",
    "ago.h": "{n} h ago",
    "ago.d": "{n} d ago",
    "gateway.provision": "Provision gateway (MQTT account)",
    "gateway.provisioned": "Gateway provisioned. Enter these in the gateway once; the password is not shown again.",
    "gateway.user": "MQTT user",
    "gateway.password": "password",
    "gateway.topics": "topics",
    "registry.hierarchy": "Hierarchy",
    "registry.residents_n": "{n} residents",
    "registry.workers": "Workers",
    "registry.import": "CSV import",
    "registry.columns": "Columns",
    "registry.dry_run": "Dry run (check only)",
    "registry.upload": "Upload",
    "registry.export": "Export CSV",
    "registry.dry_run_result": "Dry run",
    "registry.good_rows": "{n} good rows",
    "registry.imported": "imported",
    "registry.errors": "{n} errors",
    "registry.line": "Line",
    "registry.column": "Column",
    "registry.reason": "Reason",
    "stats.printable": "Printable report",
    "stats.alerts": "Alerts",
    "stats.devices_online": "Devices online",
    "stats.target": "target",
    "stats.by_type": "By type",
    "stats.by_outcome": "By outcome",
    "stats.response_community": "Response by community",
    "stats.response_grid": "Response by grid",
    "stats.alerts_short": "Alerts",
    "stats.ack": "Ack p50/p90",
    "stats.on_site": "On site p50/p90",
    "stats.device_source.telemetry": "from last-seen times",
    "stats.device_source.alerts": "from offline alerts",
    "worker.title": "Workers",
    "worker.id": "Worker id",
    "worker.name": "Name",
    "worker.role": "Role",
    "worker.scope": "Area",
    "worker.phone": "Mobile",
    "worker.password": "Initial password (empty: generate one)",
    "worker.new_password": "New password (empty: generate one)",
    "worker.status": "Status",
    "worker.active": "active",
    "worker.inactive": "deactivated",
    "worker.create": "Add worker",
    "worker.created": "Added {id}",
    "worker.deactivate": "Deactivate",
    "worker.reactivate": "Reactivate",
    "worker.deactivated": "Deactivated {id}",
    "worker.reactivated": "Reactivated {id}",
    "worker.reset": "Reset password",
    "worker.password_set": "Password of {id} set",
    "worker.one_time": "One-time password of {id} (shown once; hand it over in person and ask them to change it):",
    "worker.self": "You cannot deactivate your own account",
    "worker.weak": "Passwords have at least 10 characters",
    "worker.bad_role": "This role can only cover an area of its own level",
    "worker.refused": "Not allowed to manage workers",
    "worker.you": "you",
    "role.admin": "admin",
    "role.district": "district duty",
    "role.street": "street duty",
    "role.community_duty": "community duty",
    "role.grid_worker": "grid worker",
    "worker.taken": "{field} already in use: {value}",
    "worker.invalid": "Invalid {field}: {reason}",
    "worker.actions": "Actions",
    "worker.set": "Set",
    "level.district": "district",
    "level.street": "street",
    "level.community": "community",
    "level.grid": "grid",
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

# Names of alert severities and device kinds come from the one catalogue shared with the notifications.
for _lang, _table in (("zh", _ZH), ("en", _EN)):
    _table.update({f"alert.severity.{k.value}": label(SEVERITIES, k, _lang) for k in SEVERITIES})
    _table.update({f"kind.{k.value}": label(DEVICE_KINDS, k, _lang) for k in DEVICE_KINDS})

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
        """Name of an alert type (:mod:`alerts.labels`, as in the notifications)."""
        return label(ALERT_TYPES, value, self.lang)

    def state(self, value: str) -> str:
        """Name of an alert state."""
        return label(STATES, value, self.lang)

    def outcome(self, value: str) -> str:
        """Name of an alert outcome (or of the state of an alert without one)."""
        if value in STATES:
            return self.state(value)
        return label(OUTCOMES, value, self.lang)

    def kind(self, value: str) -> str:
        """Name of a device kind."""
        return label(DEVICE_KINDS, value, self.lang)

    def ago(self, seconds: int) -> str:
        """A silence as "5 min ago", in the largest whole unit.

        >>> Translator("en").ago(59), Translator("en").ago(7200), Translator("zh").ago(3 * 86400)
        ('59 s ago', '2 h ago', '3 天前')
        """
        s = max(0, int(seconds))
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if s >= size:
                return self(f"ago.{unit}", n=s // size)
        return self("ago.s", n=s)

    def ability(self, level: int) -> str:
        """GB/T 42195-2022 ability level name."""
        names = ABILITY_ZH if self.lang == "zh" else ABILITY_EN
        return f"{level} {names[level]}" if 0 <= level < len(names) else str(level)
