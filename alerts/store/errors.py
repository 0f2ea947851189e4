"""Typed errors of the alert store, the lifecycle and the one-tap links; each carries its data."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an error's text, spaces collapsed (a driver's multi-line message), or its type's name."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


class AlertStoreError(Exception):
    """Base class of every error raised by the alert store and the alert service."""


class StoreUnavailable(AlertStoreError):
    """Raised when the store cannot be opened: a bad URL, an unreachable server, a missing database or file."""

    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(
            f"the store {url} cannot be opened: {reason}; check ELDERCARE_DATABASE_URL (and that the server runs)"
            f" / 无法打开数据库 {url}"
        )
        self.url = url
        self.reason = reason


class StoreSchemaMismatch(AlertStoreError):
    """The store's schema revision is not the one this code runs on; nothing was changed."""

    def __init__(self, message: str, *, url: str, revision: str, head: str | None) -> None:
        super().__init__(message)
        self.url = url
        self.revision = revision
        self.head = head


class StoreSchemaAhead(StoreSchemaMismatch):
    """Raised when the store was migrated by a newer release than the running code (a downgrade without restoring)."""

    def __init__(self, *, url: str, revision: str, head: str | None) -> None:
        super().__init__(
            f"the store {url} has the schema {revision} of a newer release; this release knows up to {head}:"
            " run the release that migrated it, or restore the backup taken before that upgrade"
            " (docs/operations.md, 'Upgrades') / 数据库结构来自更新的版本，请使用该版本，或恢复升级前的备份",
            url=url, revision=revision, head=head,
        )  # fmt: skip


class StoreSchemaBehind(StoreSchemaMismatch):
    """Raised by a command that migrates only new stores when the store has an older schema than the code."""

    def __init__(self, *, url: str, revision: str, head: str | None) -> None:
        super().__init__(
            f"the store {url} has the older schema {revision}; this release needs {head}: back it up, stop the"
            " services, then run `eldercare db upgrade` (docs/operations.md, 'Upgrades'); nothing was changed"
            " / 数据库结构较旧，请先备份并停止服务，再运行 eldercare db upgrade",
            url=url, revision=revision, head=head,
        )  # fmt: skip


class AlertNotFound(AlertStoreError):
    """Raised when an alert id does not exist."""

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} not found / 告警 {alert_id} 不存在")
        self.alert_id = alert_id


class RecordNotFound(AlertStoreError):
    """Raised when a registry record (resident, worker, site, device) does not exist."""

    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} {record_id!r} not found / 未找到 {kind} {record_id!r}")
        self.kind = kind
        self.record_id = record_id


class InvalidTransition(AlertStoreError):
    """Raised when an action is not allowed in the alert's current state."""

    def __init__(self, *, alert_id: int | None, state: str, action: str, reason: str) -> None:
        super().__init__(f"alert {alert_id}: cannot {action} when {state}: {reason}")
        self.alert_id = alert_id
        self.state = state
        self.action = action
        self.reason = reason


class WriteBusy(AlertStoreError):
    """Raised by a write asked not to wait (``nowait``) when another writer holds the lock; nothing was written."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"write lock held by {holder}")
        self.holder = holder
        """``this process`` (the in-process write gate) or ``another connection`` (SQLite busy)."""


class RegistryImportError(AlertStoreError):
    """Raised when a registry document (docs/registry.md) is malformed; nothing is imported."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"registry {path}: {reason}")
        self.path = path
        self.reason = reason


class PolicyError(AlertStoreError):
    """Raised when an escalation policy is invalid (e.g. a life-safety policy that batches or mutes)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"escalation policy {key!r}: {reason}")
        self.key = key
        self.reason = reason


class LinkError(AlertStoreError):
    """Raised when a one-tap link cannot be used; ``reason`` is one of malformed, signature, expired, purpose.

    ``alert_id`` is the alert of a genuine (signed) link that expired, so its page can lead to the alert after a
    login; None otherwise (the id is no secret: the token carries it in clear, only signed).
    """

    def __init__(self, reason: str, detail: str = "", *, alert_id: int | None = None) -> None:
        super().__init__(f"link rejected ({reason}){': ' + detail if detail else ''}")
        self.reason = reason
        self.detail = detail
        self.alert_id = alert_id


class RecordConflict(AlertStoreError, ValueError):
    """Raised when a new record's id or unique value (e.g. a worker's login phone) is already taken."""

    def __init__(self, kind: str, field: str, value: str) -> None:
        super().__init__(f"{kind} {field} {value!r} already exists / {kind} {field} {value!r} 已存在")
        self.kind = kind
        self.field = field
        self.value = value


class InvalidRecord(AlertStoreError, ValueError):
    """Raised when a new or changed registry record is inconsistent (e.g. a scope that is no node of its level)."""

    def __init__(self, kind: str, field: str, reason: str) -> None:
        super().__init__(f"{kind} {field}: {reason}")
        self.kind = kind
        self.field = field
        self.reason = reason


class WorkerInactive(RecordNotFound):
    """Raised when work is given to a deactivated worker (a kind of "not found": they cannot log in or be told)."""

    def __init__(self, worker_id: str) -> None:
        super().__init__("worker", worker_id)
        self.args = (f"worker {worker_id!r} is inactive / 工作人员 {worker_id!r} 已停用",)
        self.worker_id = worker_id


class AwayNoticeError(AlertStoreError, ValueError):
    """Raised when an away notice (外出报备) is refused; nothing is stored.

    ``code`` says why (``ends_before_starts``, ``ends_past``, ``starts_past``, ``too_long``, ``reason``,
    ``unknown_site``, ``overlap``); ``other`` is the id of the notice it overlaps (``overlap`` only).
    """

    def __init__(self, code: str, message: str, *, site: str, other: int | None = None) -> None:
        super().__init__(f"away notice for {site!r}: {message}")
        self.code = code
        self.site = site
        self.other = other
