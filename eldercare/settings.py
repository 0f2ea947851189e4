"""All configuration, read once at the top (CLI ``main`` or FastAPI lifespan) from ELDERCARE_* variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings; secrets come from the environment (or a ``.env`` file), never from code."""

    model_config = SettingsConfigDict(env_prefix="ELDERCARE_", env_file=".env", extra="ignore")

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
    gateway_secret: SecretStr = Field(default=SecretStr(""), description="Derives per-gateway MQTT passwords.")

    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "eldercare"
    influx_token: SecretStr | None = Field(default=None, description="InfluxDB 2.x/3.x token (v1 API).")
    influx_gzip: bool = False
    influx_batch_size: int = Field(default=5000, description="Points per InfluxDB write request (ingest writer).")
    influx_retry_interval_ms: int = Field(default=5000, description="First retry delay while InfluxDB is down.")
    influx_backup_host: str = Field(default="127.0.0.1:8088", description="influxd RPC address (backup/restore).")
    closed_alert_retention_days: int = Field(
        default=365, description="Free text of alerts closed longer ago is blanked (eldercare privacy retention)."
    )
    influx_raw_retention: str = Field(default="90d", description="Retention of raw readings (InfluxQL duration).")
    spool_max_mb: int = Field(default=1024, description="Disk spool bound; beyond it MQTT acks stop (backpressure).")

    # -- clustered mode (docs/scale-out.md): partition workers on a NATS JetStream cluster; unset = embedded mode
    nats_urls: str = Field(default="", description="Comma-separated nats:// URLs of the cluster (partition workers).")
    partitions: int = Field(default=64, description="Fixed number of home partitions (same as the NATS mapping).")
    worker_id: str = Field(default="", description="This partition worker's name (default: host-pid).")
    lease_s: float = Field(default=10.0, description="Partition lease time; a dead worker's homes move after it.")
    nats_replicas: int = Field(default=3, description="Replicas of the lease/membership buckets (cluster size).")

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

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
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
        if self.mqtt_port <= 0 or self.mqtt_port > 65535:
            raise ValueError(f"ELDERCARE_MQTT_PORT must be 1..65535, got {self.mqtt_port}")
        return self
