"""All configuration, read once at the top (CLI ``main`` or FastAPI lifespan) from ELDERCARE_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec
from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.arc.dc09 import parse_key
from alerts.escalation import PolicyBook
from alerts.store.errors import PolicyError
from detection.config import DetectConfig
from gateway.budget import DEFAULT_BURST, DEFAULT_RATE_PER_S, SiteBudget, parse_budget

if TYPE_CHECKING:
    from ingest.influx import InfluxClient


PLACEHOLDER: Final = "change-me"
"""What deploy/eldercare.env.example writes for every secret: refused in any secret setting (a public string would
derive every gateway's password and sign one-tap links)."""


class Settings(BaseSettings):
    """Deployment settings; secrets come from the environment (or a ``.env`` file), never from code."""

    # hide_input_in_errors: a failed check must not print the inputs, which hold the secrets (ARC key, passwords).
    model_config = SettingsConfigDict(
        env_prefix="ELDERCARE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(default=Path("var"), description="Spool, dead-letter record, SQLite store, snapshots.")
    registry_path: Path | None = Field(default=None, description="Registry JSON (docs/registry.md) to provision.")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "backend"
    mqtt_password: SecretStr = SecretStr("")
    mqtt_client_id: str = "eldercare-backend"
    mqtt_share_group: str | None = Field(
        default=None, description="Removed (issue 18): refused when set; scale out by homes (docs/scale-out.md)."
    )
    mqtt_client: Literal["native", "paho"] = Field(
        default="native", description="Receive client: our asyncio MQTT 3.1.1 subscriber, or paho-mqtt (fallback)."
    )
    gateway_secret: SecretStr = Field(default=SecretStr(""), description="Derives per-gateway MQTT passwords.")
    mqtt_confirm_stored: bool = Field(
        default=True, description="Send each gateway `stored` confirmations of durable readings (gateway/confirm.py)."
    )
    mqtt_confirm_interval_ms: int = Field(default=1000, description="Confirmations per gateway coalesced this long.")
    mqtt_session_save_changes: int = Field(
        default=1000,
        description="Make the broker save a new backend session at once: its autosave_interval (on changes); 0 = off.",
    )

    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "eldercare"
    influx_token: SecretStr | None = Field(default=None, description="InfluxDB 2.x/3.x token (v1 API).")
    influx_gzip: bool = False
    influx_batch_size: int = Field(default=5000, description="Points per InfluxDB write request (ingest writer).")
    influx_retry_interval_ms: int = Field(default=5000, description="First retry delay while InfluxDB is down.")
    influx_writes_in_flight: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Batches written to InfluxDB at once; acknowledged in arrival order (docs/storage.md).",
    )
    influx_backup_host: str = Field(default="127.0.0.1:8088", description="influxd RPC address (backup/restore).")
    backup_tls_dir: Path | None = Field(
        default=None,
        description="The broker's TLS files (eldercare certs --out, with the CA key): in every backup, restored.",
    )
    closed_alert_retention_days: int = Field(
        default=365, description="Free text of alerts closed longer ago is blanked (eldercare privacy retention)."
    )
    influx_raw_retention: str = Field(default="90d", description="Retention of raw readings (InfluxQL duration).")
    spool_max_mb: int = Field(default=1024, description="Disk spool bound; beyond it MQTT acks stop (backpressure).")
    site_budget: str = Field(
        default=f"{DEFAULT_RATE_PER_S:g}/{DEFAULT_BURST}",
        description="Each home's budget of messages that are not life-safety, 'rate/burst' (a second, at once) or"
        " 'off'; beyond it they are counted as over_budget, not stored, not confirmed (docs/operations.md).",
    )

    # -- clustered mode (docs/scale-out.md): partition workers on a NATS JetStream cluster; unset = embedded mode
    nats_urls: str = Field(default="", description="Comma-separated nats:// URLs of the cluster (partition workers).")
    nats_user: str = Field(default="", description="The workers' NATS user on a secured cluster (empty: none).")
    nats_password: SecretStr = Field(default=SecretStr(""), description="Its password (the nodes hold a bcrypt hash).")
    nats_ca: str = Field(
        default="", description="CA file of the nodes' TLS certificates (eldercare certs); set: workers use TLS only."
    )
    nats_bridge_user: str = Field(
        default="", description="An edge mosquitto bridge's NATS user (its homes' uplinks and commands only)."
    )
    nats_bridge_password: SecretStr = Field(
        default=SecretStr(""), description="Its password (the nodes hold a bcrypt hash; mosquitto.conf the plaintext)."
    )
    nats_route_password: SecretStr = Field(
        default=SecretStr(""), description="Lets the NATS nodes route to each other (eldercare nats-accounts)."
    )
    partitions: int = Field(default=64, description="Fixed number of home partitions (same as the NATS mapping).")
    worker_id: str = Field(default="", description="This partition worker's name (default: host-pid).")
    lease_s: float = Field(default=10.0, description="Partition lease time; a dead worker's homes move after it.")
    nats_replicas: int = Field(default=3, description="Replicas of the lease/membership buckets (cluster size).")
    partition_snapshot_s: float = Field(
        default=30.0, description="How often a worker stores each owned partition's detection snapshot in NATS."
    )

    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite file in data_dir.")
    public_url: str = "http://127.0.0.1:8000"
    # -- console (eldercare serve --role console|all)
    console_host: str = Field(default="127.0.0.1", description="Address the console listens on.")
    console_port: int = Field(default=8000, description="Console HTTP port.")
    trusted_proxies: str = Field(default="", description="Reverse proxies whose X-Forwarded-For is believed.")
    console_tls_cert: Path | None = Field(default=None, description="HTTPS certificate (without a reverse proxy).")
    console_tls_key: Path | None = Field(default=None, description="Its private key.")
    metrics_token: SecretStr = Field(default=SecretStr(""), description="Bearer token for /metrics off loopback.")
    link_secret: SecretStr = SecretStr("")
    max_clock_skew_s: int = 300
    # -- 4G elder watches (gateway/watch, docs/devices.md): a TCP server for the [VV*IMEI*LEN*...] text protocol
    watch_port: int | None = Field(default=None, description="TCP port for 4G watches; unset: no watch server.")
    watch_host: str = Field(default="0.0.0.0", description="Address the watch server listens on (watches use 4G).")
    watch_max_per_address: int = Field(default=256, description="Watch connections from one address (carrier NAT).")
    watch_idle_timeout_s: float = Field(default=900.0, description="Close a watch connection silent this long.")
    # -- alarm-receiving centre (docs/alerts.md "ARC output"): off unless arc_host is set
    arc_host: str = Field(default="", description="ARC receiver host (SIA DC-09 over TCP); empty: no ARC output.")
    arc_port: int = Field(default=0, description="ARC receiver TCP port.")
    arc_accounts: dict[str, str] = Field(default_factory=dict, description="JSON: site → ARC account (hex).")
    arc_community_accounts: dict[str, str] = Field(
        default_factory=dict, description="JSON: community id → ARC account, for homes not in arc_accounts."
    )
    arc_account_prefix: str = Field(default="", description="Else account = prefix + the digits of the site id.")
    arc_receiver: str = Field(default="", description="DC-09 receiver number (R field); empty: omitted.")
    arc_line: str = Field(default="0", description="DC-09 line prefix (L field).")
    arc_fall_code: str = Field(default="101", description="Contact ID code of a fall (no standard code; 101 or 120).")
    arc_timeout_s: float = Field(default=10.0, description="Connect / wait-for-ACK limit of one attempt.")
    arc_supervision_s: float = Field(default=300.0, description="DC-09 NULL link-test interval; 0: none.")
    arc_key: SecretStr = Field(
        default=SecretStr(""), description="DC-09 AES key, 32/48/64 hex digits (AES-128/192/256); empty: plain."
    )
    detect: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Detection settings: any DetectConfig field (docs/detection.md) as JSON, e.g."
            """ ELDERCARE_DETECT='{"checkin_window_s": 180, "fatigue_budget_per_month": 3}'."""
        ),
    )

    policies_path: Path | None = Field(
        default=None,
        description=(
            "Escalation policies (JSON, docs/alerts.md 'Escalation policies'): who is told, reminded and escalated"
            " to, and when, per severity and per community; unset: the built-in defaults."
        ),
    )

    _store_defaulted: bool = PrivateAttr(default=False)
    _policy_book: PolicyBook = PrivateAttr(default_factory=PolicyBook)

    @property
    def store_is_default(self) -> bool:
        """True when ELDERCARE_DATABASE_URL was not set and the store is the SQLite file in the data directory."""
        return self._store_defaulted

    def detect_config(self) -> DetectConfig:
        """The detection rules of this deployment: the defaults with ``detect`` applied (checked at start-up)."""
        return detect_config_from(self.detect)

    def new_site_budget(self) -> SiteBudget | None:
        """A fresh per-home budget of this deployment (``site_budget``; None when it is off), for one receive path."""
        return parse_budget(self.site_budget)

    def policy_book(self) -> PolicyBook:
        """The escalation policies of this deployment: ``policies_path``'s, or the defaults (read once, at start-up)."""
        return self._policy_book

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self._store_defaulted = True
            self.database_url = f"sqlite:///{(self.data_dir / 'eldercare.db').resolve()}"
        if self.mqtt_share_group is not None:
            # A $share group hands a home's messages to its members per message (each member's detection sees a
            # fragment) and lets any account that can subscribe take a turn (issue 13, R2). Fail, never ignore.
            raise ValueError(
                "ELDERCARE_MQTT_SHARE_GROUP is no longer supported: a shared subscription splits a home's readings"
                " between processes (false alerts) and a gateway could join the group and drop readings."
                " Run one backend, or scale out by homes (docs/scale-out.md)."
                " / 不再支持 ELDERCARE_MQTT_SHARE_GROUP：共享订阅会把同一住户的数据拆到不同进程（产生误报），"
                "网关也可加入该组导致数据丢失。请运行单个后端，或按住户分区扩展（见 docs/scale-out.md）。"
            )
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and PLACEHOLDER in value.get_secret_value().lower():
                raise ValueError(
                    f"ELDERCARE_{name.upper()} still holds the example's placeholder {PLACEHOLDER!r}: set a random"
                    " value (`openssl rand -base64 32`) / 仍是示例占位值，请改为随机值"
                )
        if self.nats_bridge_user and not self.nats_bridge_password.get_secret_value():
            raise ValueError("ELDERCARE_NATS_BRIDGE_USER is set: ELDERCARE_NATS_BRIDGE_PASSWORD is required too")
        if self.mqtt_port <= 0 or self.mqtt_port > 65535:
            raise ValueError(f"ELDERCARE_MQTT_PORT must be 1..65535, got {self.mqtt_port}")
        detect_config_from(self.detect)  # fail fast on an unknown field or a wrong type
        try:
            parse_budget(self.site_budget)
        except ValueError as exc:
            raise ValueError(f"ELDERCARE_SITE_BUDGET: {exc}") from None
        self._policy_book = policy_book_from(self.policies_path)  # fails fast on a file unreadable or not safe
        if self.watch_port is not None and not 0 <= self.watch_port <= 65535:
            raise ValueError(f"ELDERCARE_WATCH_PORT must be 0..65535 (0: any free port), got {self.watch_port}")
        if self.arc_host and not 0 < self.arc_port < 65536:
            raise ValueError(f"ELDERCARE_ARC_PORT must be 1..65535 when ELDERCARE_ARC_HOST is set, got {self.arc_port}")
        if self.arc_key.get_secret_value():
            try:
                parse_key(self.arc_key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"ELDERCARE_ARC_KEY: {exc}") from None
        return self


def policies_in_force(settings: Settings) -> str:
    """Which escalation policies a process uses, for its start-up log line.

    >>> policies_in_force(Settings(policies_path=None))
    'the built-in defaults (ELDERCARE_POLICIES_PATH unset)'
    """
    path = settings.policies_path
    if path is None:
        return "the built-in defaults (ELDERCARE_POLICIES_PATH unset)"
    communities = settings.policy_book().communities
    return f"{path} (default and {len(communities)} communit{'y' if len(communities) == 1 else 'ies'})"


def policy_book_from(path: Path | None) -> PolicyBook:
    """The policy book in the JSON file ``path`` (None: the defaults); a clear error naming the setting otherwise.

    Policies are snapshotted into each alert when it is raised: a changed file applies to alerts raised after the
    processes that raise alerts restart (docs/alerts.md).
    """
    if path is None:
        return PolicyBook()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"ELDERCARE_POLICIES_PATH: cannot read {path} ({exc.strerror or exc})") from None
    try:
        return PolicyBook.from_json(data)
    except PolicyError as exc:
        raise ValueError(f"ELDERCARE_POLICIES_PATH: {path}: {exc}") from None


def detect_config_from(overrides: Mapping[str, Any]) -> DetectConfig:
    """``DetectConfig`` with ``overrides``; a clear error naming the field for unknown names or wrong types.

    >>> detect_config_from({"checkin_window_s": 120}).checkin_window_s
    120
    >>> detect_config_from({"checkin_window": 120})
    Traceback (most recent call last):
    ...
    ValueError: ELDERCARE_DETECT: unknown detection setting(s) checkin_window (see docs/detection.md)
    """
    known = {f.name for f in msgspec.structs.fields(DetectConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"ELDERCARE_DETECT: unknown detection setting(s) {', '.join(unknown)} (see docs/detection.md)")
    try:
        return msgspec.convert(dict(overrides), DetectConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"ELDERCARE_DETECT: {exc}") from None


def mqtt_login(settings: Settings) -> dict[str, Any]:
    """The backend's broker address and account as its MQTT clients' keyword arguments.

    ``host``, ``port``, ``username``, ``password``: the receive listener, the command publisher, the confirmations
    sender.
    """
    return {
        "host": settings.mqtt_host,
        "port": settings.mqtt_port,
        "username": settings.mqtt_username,
        "password": settings.mqtt_password.get_secret_value(),
    }


def influx_client(settings: Settings, *, db: str | None = None, **options: Any) -> InfluxClient:
    """An InfluxDB client for the settings' server and token (``db``: another database than ELDERCARE_INFLUX_DB).

    ``options`` go to :class:`ingest.influx.InfluxClient` (``timeout_s``, ``gzip``).
    """
    from ingest.influx import InfluxClient

    token = settings.influx_token.get_secret_value() if settings.influx_token else None
    return InfluxClient(url=settings.influx_url, db=db or settings.influx_db, token=token, **options)
