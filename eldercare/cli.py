"""The ``eldercare`` command: everything an operator does (up, serve, simulate, replay, evaluate, bench, ...)."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from eldercare.broker_cli import broker_app
from eldercare.logs import configure_logging

if TYPE_CHECKING:
    from detection.replay import ReplayResult
    from eldercare.settings import Settings

app = typer.Typer(
    name="eldercare",
    help="Elder-care home monitoring backend / 居家老人安全监测后台",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Benchmarks; each prints ratios against a baseline measured in the same run.")
deadletter_app = typer.Typer(help="Inspect the dead-letter record of refused messages.")
db_app = typer.Typer(help="The alert/registry store (SQLite or PostgreSQL).")
admin_app = typer.Typer(help="Administrator accounts.")
privacy_app = typer.Typer(help="Data-subject requests (PIPL): export or erase one resident's data.")
arc_app = typer.Typer(help="Alarm-receiving centre (ARC) output: Contact ID over SIA DC-09 / 报警中心接口.")
app.add_typer(bench_app, name="bench")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(privacy_app, name="privacy")
app.add_typer(arc_app, name="arc")
app.add_typer(broker_app, name="broker")
console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    """Print the message as one unwrapped red line on stderr; the caller raises the returned Exit."""
    console.print(f"[red]{message}[/]", soft_wrap=True, highlight=False, markup=True)
    return typer.Exit(code)


def _step(line: str) -> None:
    """One step of a long command, as it ends, with the time (the operator sees it move; a timer's journal too)."""
    console.print(f"{time.strftime('%H:%M:%S')} {escape(line)}", soft_wrap=True, highlight=False)


def _logging(verbose: bool) -> None:
    configure_logging(verbose=verbose)


@app.callback()
def _every_command() -> None:
    """Elder-care home monitoring backend / 居家老人安全监测后台."""
    # Every command may create files holding personal data (SQLite store, dead letters, exports, backups): private
    # from the first one on, whatever the administrator's umask (`db upgrade` used to leave eldercare.db 0644).
    from eldercare.logs import private_umask

    private_umask()


def _store_settings() -> Settings:
    """The settings of a command that touches the store (:func:`eldercare.production.store_settings`)."""
    from eldercare.production import ConfigError, store_settings

    try:
        return store_settings()
    except ConfigError as exc:
        raise _fail(f"configuration error / 配置错误: {escape(str(exc))}", 2) from None


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


@app.command()
def up(
    homes: Annotated[int, typer.Option(help="Simulated homes publishing live.")] = 20,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    data_dir: Annotated[Path | None, typer.Option(help="Keep data here instead of a temporary directory.")] = None,
    console_port: Annotated[int, typer.Option(help="Console HTTP port (0 = free port).")] = 8000,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (0 = until Ctrl-C).")] = 0.0,
    demo_sos_every: Annotated[float, typer.Option(help="Seconds between demo call-button presses (0 = off).")] = 180,
    host: Annotated[
        str, typer.Option(help="Console address to listen on; 0.0.0.0 lets phones on the LAN open the links.")
    ] = "127.0.0.1",
    verbose: Verbose = False,
) -> None:
    """Run the whole stack locally: mosquitto, influxd, backend, console and a simulated neighbourhood."""
    _logging(verbose)
    from dashboards.serve import ConsolePortBusy
    from eldercare.up import run_up

    try:
        run_up(
            homes=homes,
            seed=seed,
            data_dir=data_dir,
            console_port=console_port,
            duration=duration,
            demo_sos_every_s=demo_sos_every,
            host=host,
        )
    except ConsolePortBusy as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(
    role: Annotated[
        str, typer.Option(help="backend (pipeline, detection, alerts), console (web), or all in one process.")
    ] = "all",
    host: Annotated[str | None, typer.Option(help="Listen address (default ELDERCARE_CONSOLE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default ELDERCARE_CONSOLE_PORT, 8000).")] = None,
    verbose: Verbose = False,
) -> None:
    """Run the backend and/or the console against configured servers (ELDERCARE_* settings; docs/operations.md).

    Besides the console, every role answers /healthz, /readyz (broker, InfluxDB, database) and /metrics.
    """
    _logging(verbose)
    from eldercare.production import ROLES, ConfigError, run_serve

    if role not in ROLES:
        raise typer.BadParameter(f"--role must be one of {', '.join(ROLES)}")
    settings = _store_settings()
    registry = json.loads(settings.registry_path.read_text()) if settings.registry_path else None
    try:
        asyncio.run(
            run_serve(
                settings,
                role=role,  # checked against ROLES above
                host=host or settings.console_host,
                port=port if port is not None else settings.console_port,
                registry=registry,
            )
        )
    except ConfigError as exc:
        raise _fail(f"配置错误 / configuration error: {escape(str(exc))}", 2) from None


@app.command()
def certs(
    out: Annotated[Path, typer.Option(help="Directory for ca.crt/ca.key and server.crt/server.key.")] = Path("certs"),
    host: Annotated[
        list[str] | None, typer.Option(help="Host name or address in the server certificate (repeat the option).")
    ] = None,
    client: Annotated[
        list[str] | None, typer.Option(help="Also issue a client certificate with this CN, e.g. a gateway site.")
    ] = None,
    nats_node: Annotated[
        bool,
        typer.Option(
            "--nats-node", help="A NATS node's certificate: its routes dial the other nodes with it (scale-out docs)."
        ),
    ] = False,
) -> None:
    """Make a local certificate authority and a server certificate (MQTT over TLS, HTTPS) signed by it.

    An existing CA in --out is reused, so new certificates chain to what gateways already trust.
    """
    from eldercare.certs import CertError, issue, server_certificate

    try:
        files = server_certificate(out, hosts=host or ["localhost", "127.0.0.1"], peer=nats_node)
        for name in client or []:
            issue(out, name, client=True)
    except CertError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"CA {files.ca}; server certificate {files.cert} (key {files.key}, mode 0600)")


@app.command()
def worker(
    seed_from: Annotated[
        Path | None,
        typer.Option(
            "--seed-from",
            help="Store this one-process snapshot (DATA_DIR/detect/engine.msgpack) as the partitions' first"
            " snapshots, keeping learned baselines when moving into the cluster; then exit.",
        ),
    ] = None,
) -> None:
    """Clustered mode: run one partition worker on the NATS cluster in ELDERCARE_NATS_URLS (docs/scale-out.md)."""
    if seed_from is not None:
        from eldercare.partition_worker import seed_snapshots
        from eldercare.settings import Settings

        seeded = asyncio.run(seed_snapshots(Settings(), seed_from.read_bytes()))
        console.print(f"{seeded} partition snapshots seeded / 已写入 {seeded} 个分区快照")
        return
    from eldercare.partition_worker import main as run_worker

    run_worker()


@app.command("nats-sessions")
def nats_sessions(
    monitor: Annotated[
        list[str], typer.Option(help="A node's monitoring address, e.g. http://127.0.0.1:8222 (repeat per node).")
    ],
) -> None:
    """Clustered mode: list gateways connected under another gateway's MQTT client id; exit 1 if any."""
    from eldercare.servers.nats import foreign_mqtt_clients
    from eldercare.settings import Settings

    worker = Settings().nats_user
    found = [(m, user, client) for m in monitor for user, client in foreign_mqtt_clients(m, worker_user=worker)]
    for node, user, client in found:
        console.print(f"{node}: user {user} uses client id {client} / 用户 {user} 使用了客户端 ID {client}")
    if found:
        raise typer.Exit(1)
    console.print("no foreign client ids / 未发现冒用的客户端 ID")


@app.command("nats-accounts")
def nats_accounts(
    out: Annotated[Path, typer.Option(help="Directory for accounts.conf and cluster-auth.conf (0600).")] = Path(
        "nats-accounts"
    ),
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="Homes from the store (ELDERCARE_DATABASE_URL) with their revocations and key generations"
            " (`eldercare broker revoke`) instead of ELDERCARE_REGISTRY_PATH.",
        ),
    ] = False,
) -> None:
    """Clustered mode: write the NATS accounts every node includes (docs/scale-out.md, "Accounts").

    One user per gateway of ELDERCARE_REGISTRY_PATH (password derived from ELDERCARE_GATEWAY_SECRET, as for
    mosquitto), the workers' ELDERCARE_NATS_USER / ELDERCARE_NATS_PASSWORD, ELDERCARE_NATS_ROUTE_PASSWORD, and
    with ELDERCARE_NATS_BRIDGE_USER / _PASSWORD an edge mosquitto bridge's user (the registry's homes only).
    """
    from eldercare.settings import Settings
    from gateway.provisioning import sites_from_registry
    from ingest.nats_auth import NatsAuth

    # From the store, the env-file check of every store command: without it an empty SQLite store gave no gateway.
    s = _store_settings() if from_store else Settings()
    if (s.registry_path is None and not from_store) or not s.nats_user:
        console.print(
            "ELDERCARE_REGISTRY_PATH (or --from-store) and ELDERCARE_NATS_USER are required / 需要设置"
            " ELDERCARE_REGISTRY_PATH（或 --from-store）和 ELDERCARE_NATS_USER"
        )
        raise typer.Exit(2)
    generations: dict[str, int] = {}
    if from_store:
        from alerts.store.gateway_accounts import GatewayAccounts
        from alerts.store.repository import AlertStore

        store = AlertStore(url=s.database_url, migrate="new")
        try:
            known = GatewayAccounts(store).all()
        finally:
            store.close()
        sites = tuple(a.site for a in known if a.active)  # a revoked gateway has no account on the cluster
        generations = {a.site: a.generation for a in known if a.active and a.generation}
    else:
        assert s.registry_path is not None
        sites = tuple(e.site for e in sites_from_registry(json.loads(s.registry_path.read_text())))
    try:
        auth = NatsAuth(
            sites=sites,
            generations=generations,
            gateway_secret=s.gateway_secret.get_secret_value(),
            worker_user=s.nats_user,
            worker_password=s.nats_password.get_secret_value(),
            route_password=s.nats_route_password.get_secret_value(),
            partitions=s.partitions,
            bridge_user=s.nats_bridge_user,
            bridge_password=s.nats_bridge_password.get_secret_value(),
        )
    except ValueError as exc:
        console.print(f"{exc} / 账户配置无效")
        raise typer.Exit(2) from None
    accounts, cluster = auth.write(out)
    n = len(auth.sites)
    console.print(f"{n} gateways: {accounts}, {cluster} / 已写入 {n} 个网关账户: {accounts}, {cluster}")


@app.command()
def policies(
    file: Annotated[
        Path | None, typer.Option("--file", help="Policy file to check (default: ELDERCARE_POLICIES_PATH).")
    ] = None,
) -> None:
    """Check the escalation policies and show who is told, reminded and escalated to, and when (docs/alerts.md)."""
    from alerts.escalation import POLICY_KEYS, describe
    from eldercare.settings import Settings, policy_book_from

    path = file if file is not None else Settings().policies_path
    try:
        book = policy_book_from(path)
    except ValueError as exc:
        raise _fail(escape(f"配置错误 / configuration error: {exc}"), code=2) from None
    console.print(f"{path or '内置默认 / built-in defaults'}: OK", highlight=False)
    labels = ("立即通知 / notify", "提醒 / reminders", "升级 / escalation", "到场时限 / on site", "合并·免打扰 / held")
    for scope, pset in [("default", book.default), *sorted(book.communities.items())]:
        for key in POLICY_KEYS:
            words = "; ".join(f"{label}: {text}" for label, text in zip(labels, describe(pset.get(key)), strict=True))
            console.print(f"{escape(scope)} · {key}: {escape(words)}", highlight=False, soft_wrap=True)
    q = book.quiet
    console.print(
        f"免打扰 / quiet hours {q.start}–{q.end} ({q.timezone}), digest at {q.digest_at}. 生命安全告警（SOS、跌倒、"
        "烟雾、燃气）从不合并或延后 / life-safety alerts (SOS, fall, smoke, gas) are never batched or held for the"
        " digest, whatever the policy says. Changes apply to alerts raised after a restart of `serve` / `worker`.",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def backup(
    out: Annotated[Path, typer.Argument(help="New directory for the backup (it holds personal data: 0700).")],
    no_influx: Annotated[bool, typer.Option("--no-influx", help="Skip the telemetry (store and state only).")] = False,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            help="Then remove the older backups in the same parent directory, keeping the newest KEEP (this one"
            " included; only directories eldercare backup wrote).",
        ),
    ] = None,
) -> None:
    """Back up the store (SQLite online backup or pg_dump), InfluxDB (influxd backup -portable), detector state."""
    from eldercare.backup import BackupError, prune
    from eldercare.backup import backup as run_backup

    if keep is not None and keep < 1:
        raise _fail("--keep must be at least 1 (the backup being written) / --keep 至少为 1", code=2)
    try:
        manifest = run_backup(_store_settings(), out, influx=not no_influx, progress=_step)
    except BackupError as exc:
        raise _fail(escape(str(exc))) from None
    rows = ", ".join(f"{k} {v}" for k, v in sorted(manifest["counts"].items()) if v)
    console.print(f"backup written to {out}: {rows}")
    if keep is not None:
        removed = prune(out.parent, keep=keep, written=out)
        if removed:
            names = ", ".join(p.name for p in sorted(removed))
            console.print(f"removed {len(removed)} older backups (keeping {keep}): {escape(names)}", soft_wrap=True)


@app.command("verify-backup")
def verify_backup(
    src: Annotated[Path, typer.Argument(help="A directory written by eldercare backup (an off-site copy too).")],
) -> None:
    """Check a backup without changing it: every file's checksum, the store copy's own integrity check.

    Needs no deployment settings, so it runs where the copies are kept. `eldercare restore` runs it first.
    """
    from eldercare.backup_verify import verify

    checked = verify(src)
    for problem in checked.problems:
        console.print(f"[red]{escape(problem)}[/]", soft_wrap=True, highlight=False)
    if not checked.ok:
        raise _fail(f"{escape(str(src))}: damaged, {len(checked.problems)} problems / 备份已损坏")
    if checked.checksums:
        console.print(
            f"{escape(str(src))}: whole, {checked.files} files match their checksums / 备份完整", soft_wrap=True
        )
    else:
        console.print(
            f"{escape(str(src))}: written before checksums were recorded (before 2026-12-07); its store copy passes its"
            " own check / 旧版备份：无校验和，数据库副本检查通过",
            soft_wrap=True,
        )


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="A directory written by eldercare backup.")],
    no_influx: Annotated[bool, typer.Option("--no-influx", help="Skip the telemetry.")] = False,
    replace_telemetry: Annotated[
        bool,
        typer.Option(
            "--replace-telemetry", help="Drop the existing InfluxDB database first (influxd cannot restore over it)."
        ),
    ] = False,
) -> None:
    """Restore a backup into the configured deployment (stop backend and console first; docs/operations.md).

    Checks everything first (no service running, store reachable, telemetry database absent or
    --replace-telemetry) and changes nothing if a check fails.
    """
    from alerts.store.migrate import head_revision
    from eldercare.backup import BackupError, left_out, store_counts
    from eldercare.backup import restore as run_restore

    settings = _store_settings()
    try:
        manifest = run_restore(settings, src, influx=not no_influx, replace_telemetry=replace_telemetry, progress=_step)
    except BackupError as exc:
        raise _fail(escape(str(exc))) from None
    now = store_counts(settings)
    differ = {k: (v, now.get(k)) for k, v in manifest["counts"].items() if now.get(k) != v}
    if differ:
        console.print(f"[red]restored row counts differ from the backup's: {differ}[/]")
        raise typer.Exit(1)
    console.print(f"restored from {src}; row counts match the backup")
    if (schema := manifest.get("schema")) is not None and schema != head_revision():
        console.print(
            f"the restored store has the schema of its backup ({schema}); `eldercare db upgrade` (the backend unit's"
            " start runs it) brings it to this release's / 数据库结构为备份时的版本，启动前请运行 eldercare db upgrade",
            soft_wrap=True,
        )
    for note in left_out(settings, src):
        console.print(f"[yellow]warning: {escape(note)}[/]", soft_wrap=True)


@privacy_app.command("export")
def privacy_export(
    resident_id: Annotated[str, typer.Argument(help="Resident id (编号).")],
    out: Annotated[Path, typer.Option(help="Write the JSON here (created 0600).")],
) -> None:
    """Everything stored about one resident, as JSON (access request); audited as privacy.exported."""
    import os

    from alerts.store.errors import RecordNotFound
    from eldercare.privacy import export

    try:
        doc = asyncio.run(export(_store_settings(), resident_id))
    except RecordNotFound as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2)
    console.print(f"exported {resident_id} to {out}")


@privacy_app.command("erase")
def privacy_erase(
    resident_id: Annotated[str, typer.Argument(help="Resident id (编号).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it (erasure cannot be undone, except from a backup).")] = False,
    keep_telemetry: Annotated[bool, typer.Option(help="Keep the home's InfluxDB series.")] = False,
) -> None:
    """Anonymise one resident in the store and drop their home's telemetry; audited as privacy.erased."""
    from alerts.store.errors import RecordNotFound
    from eldercare.privacy import erase

    if not yes:
        console.print("[red]erasure cannot be undone: add --yes[/]")
        raise typer.Exit(2)
    try:
        result = asyncio.run(erase(_store_settings(), resident_id, telemetry=not keep_telemetry))
    except RecordNotFound as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    dropped = result.site_emptied and not keep_telemetry
    console.print(
        f"erased {resident_id}: {result.alerts} alerts, {result.visits} visits, {result.notifications} notifications"
        f" anonymised; telemetry of {result.site} {'dropped' if dropped else 'kept'}"
    )


@privacy_app.command("retention")
def privacy_retention() -> None:
    """Blank the free text (notes, notification bodies) of alerts closed before ELDERCARE_CLOSED_ALERT_RETENTION_DAYS.

    Raw telemetry expires by itself (InfluxDB retention policy, ELDERCARE_INFLUX_RAW_RETENTION). Run nightly.
    """
    from alerts.store.subject_requests import redact_closed_alerts
    from eldercare.backend import wall_ms
    from eldercare.privacy import operator
    from eldercare.production import open_store

    settings = _store_settings()
    now = wall_ms()
    store = open_store(settings)
    try:
        cutoff = now - settings.closed_alert_retention_days * 86_400_000
        n = redact_closed_alerts(store, closed_before_ms=cutoff, actor=operator(), now_ms=now)
    finally:
        store.close()
    console.print(f"{n} closed alerts older than {settings.closed_alert_retention_days} days redacted")


@admin_app.command("create")
def admin_create(
    worker_id: Annotated[str, typer.Option("--id", help="Login id of the administrator.")] = "admin",
    name: Annotated[str, typer.Option(help="Display name.")] = "管理员",
    phone: Annotated[str, typer.Option(help="Mobile number (also a login), optional.")] = "",
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password from this file's first line (else it is prompted).")
    ] = None,
) -> None:
    """Create an administrator in ELDERCARE_DATABASE_URL (the first login of a new deployment).

    The password is prompted (twice, hidden) or read from a file; it is never accepted on the command line,
    where other users and the shell history would see it.
    """
    from alerts.store.repository import AlertStore
    from eldercare.admin import AdminError, create_admin, read_password_file
    from eldercare.production import secure_data_dir

    settings = _store_settings()
    try:
        if password_file is not None:
            password = read_password_file(password_file)
            if (mode := password_file.stat().st_mode) & 0o077 and stat.S_ISREG(mode):
                console.print(
                    f"[yellow]warning: {escape(str(password_file))} is readable by other users"
                    f" (mode {stat.S_IMODE(mode):04o}): delete it after use, or `chmod 600` it"
                    " / 警告：密码文件可被其他用户读取[/]",
                    soft_wrap=True,
                    highlight=False,
                )
        else:
            password = typer.prompt("password / 密码", hide_input=True, confirmation_prompt=True)
        store = AlertStore(url=settings.database_url, migrate="new")
        try:
            create_admin(store, worker_id=worker_id, name=name, phone=phone, password=password)
        finally:
            store.close()
    except AdminError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if settings.database_url.startswith("sqlite"):
        secure_data_dir(settings.data_dir)
    console.print(f"administrator {worker_id!r} created; log in at {settings.public_url}/login")


@app.command()
def simulate(
    homes: Annotated[int, typer.Option(help="Number of homes.")] = 10,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 7,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives byte-identical output.")] = 1,
    mix: Annotated[
        str, typer.Option(help="Scenario mix: normal, incident-rich, device-faulty, realistic or kind:weight,...")
    ] = "normal",
    out: Annotated[Path | None, typer.Option(help="Fast-forward into this directory.")] = None,
    broker: Annotated[str | None, typer.Option(help="Publish live to this broker host instead.")] = None,
    port: Annotated[int, typer.Option(help="Broker port (live mode).")] = 1883,
    speed: Annotated[float, typer.Option(help="Live mode: simulated seconds per real second.")] = 1.0,
    realtime: Annotated[bool, typer.Option(help="Live mode: start at today's midnight, play from now.")] = False,
    mattress_cadence: Annotated[float, typer.Option(help="Seconds between mattress samples.")] = 20.0,
    duration: Annotated[float, typer.Option(help="Live mode: stop after this many seconds (0 = run through).")] = 0.0,
    site_prefix: Annotated[str, typer.Option(help="Site ids are PREFIX0001 … (tests use a unique prefix).")] = "h",
) -> None:
    """Simulate homes: a recording + ground truth + registry (fast-forward), or live publishing to a broker."""
    from eldercare.settings import Settings
    from firmware_sim.cli import simulate as run_simulate
    from gateway.provisioning import gateway_password

    secret = Settings().gateway_secret.get_secret_value()
    if broker is not None and not secret:
        raise typer.BadParameter("live mode needs ELDERCARE_GATEWAY_SECRET to derive the gateways' passwords")
    run_simulate(
        homes=homes,
        days=days,
        seed=seed,
        mix=mix,
        out=out,
        broker_host=broker,
        broker_port=port,
        password_for=lambda site: gateway_password(secret, site),
        speed=speed,
        realtime=realtime,
        mattress_cadence_s=mattress_cadence,
        site_prefix=site_prefix,
        console=console,
        duration_s=duration or None,
    )


@app.command()
def replay(
    recording: Annotated[
        Path,
        typer.Argument(
            help="Recording JSONL (the simulator's format: the wire contract).", exists=True, dir_okay=False
        ),
    ],
    registry: Annotated[
        Path | None, typer.Option(help="Registry JSON of the homes.", exists=True, dir_okay=False)
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write alerts as JSONL here (default: stdout).")] = None,
    utc_offset: Annotated[
        float | None,
        typer.Option(
            help="Local time of the homes as hours from UTC (e.g. 8, 1, -5, 0 for a recording stamped in local"
            " wall time as if UTC). Default: ELDERCARE_DETECT's tz_offset_s, else 8 (China).",
            min=-12,
            max=14,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Stop at the first recording line that cannot be read (default: skip it, say which, replay the rest)."
        ),
    ] = False,
) -> None:
    """Run the detection core over a recording in event time, with no servers, as fast as possible."""
    import sys
    import time

    import msgspec

    from detection.errors import DetectionError
    from detection.replay import replay as run_replay
    from eldercare.settings import Settings

    config = Settings().detect_config()  # ELDERCARE_DETECT applies to replays too (a wrong one: see main())
    if utc_offset is not None:
        config = msgspec.structs.replace(config, tz_offset_s=round(utc_offset * 3600))
    offset_h = config.tz_offset_s / 3600
    # Progress on stderr (stdout may carry the alerts): what is being replayed, a live timer, the totals.
    size_mb = recording.stat().st_size / 1e6
    started = time.monotonic()
    try:
        with console.status(f"replaying {recording} ({size_mb:.1f} MB) at UTC{offset_h:+g} …"):
            result = run_replay(
                recording, registry, out if out is not None else sys.stdout, config=config, strict=strict
            )
    except (OSError, ValueError, DetectionError) as exc:
        console.print(f"[red]replay failed:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"{len(result.updates)} alert updates from {recording} in {time.monotonic() - started:.1f} s"
        f" (local time UTC{offset_h:+g})"
    )
    _print_replay_tally(result, config.grace_days)
    if result.rejected:
        n = sum(result.rejected.values())
        share = n / result.messages if result.messages else 1.0
        reasons = "; ".join(
            f"{reason} {count:,} (first: {result.rejected_example.get(reason, '')})"
            for reason, count in sorted(result.rejected.items(), key=lambda kv: -kv[1])
        )
        head = "[yellow]warning:[/] " if share > 0.05 else ""
        console.print(
            f"{head}{n:,} of {result.messages:,} messages ({share:.0%}) were refused by the contract and not"
            f" replayed (docs/contract.md): {reasons} / {n:,} 条消息不符合数据协议，未参与重放"
        )
    for site, n in sorted(result.doors_without_room.items()):
        console.print(
            f"[yellow]warning:[/] home {site} has {n} door contacts without a room (no --registry entry, no"
            ' "room" in their events): each is taken for the entrance door, so a cupboard or the fridge opened'
            ' at night reads as the elder leaving. Give each device its room in the registry (room "entrance" for'
            f" the front door) or in its events / 住户 {site} 有 {n} 个门磁未注明房间：每个都被当作入户门"
            "（夜间开柜门会被当作老人外出）。请在登记表（入户门的 room 为 entrance）或事件中注明房间"
        )
    quiet = result.quiet_offline()
    for site, devices in sorted(result.no_heartbeat.items()):
        shown = ", ".join(devices[:8]) + (" …" if len(devices) > 8 else "")
        console.print(
            f"[yellow]warning:[/] home {site}: {len(devices)} device(s) sent events but never a status heartbeat"
            f" ({shown}); a device's liveness is read from its heartbeats (docs/contract.md), so each quiet spell of"
            f" the person longer than its offline limit (a PIR: 2 h 05 min) calls it offline: {quiet[site]} of the"
            " device notifications above are for these devices and measure the person's quiet, not the device."
            " Add the gateway's status heartbeats to the recording / 住户"
            f" {site} 有 {len(devices)} 个设备只有事件、从无状态心跳：设备在线与否依据心跳判断，"
            f"老人安静时间一长即被判为离线，上表中 {quiet[site]} 条设备提醒来自这些设备，"
            "反映的是老人安静而非设备故障。请在录制数据中加入网关上报的状态心跳"
        )
    if 0 <= result.first_ms < SECONDS_LIKE_MS:
        console.print(
            f'[yellow]warning:[/] the recording\'s first "t" is {result.first_ms}, {_utc(result.first_ms)}: "t"'
            ' and "ts" are epoch milliseconds, and this looks like seconds (read as milliseconds, a day of it'
            " lasts 86 s). Multiply them by 1000 / 录制数据的 t 与 ts 应为毫秒级时间戳，此处看似以秒为单位，请乘以 1000"
        )
    if result.never_heard:
        shown = ", ".join(result.never_heard[:10]) + (" …" if len(result.never_heard) > 10 else "")
        console.print(
            f"note: {len(result.never_heard)} home(s) of the registry have no message in the recording and were not"
            f" replayed: {shown} / 登记表中有 {len(result.never_heard)} 户在录制数据中没有任何消息，未参与重放"
        )
    back = result.reordered
    if back is not None:
        console.print(
            f"[yellow]note:[/] {recording} is not in time order (line {back.line} goes back from"
            f" {_utc(back.before_ms)} to {_utc(back.t_ms)}); it was replayed in time order, each home from its own"
            " first message / 录制文件未按时间排序，已按时间顺序重放（每户从其第一条消息开始）"
        )
    bad = result.unreadable
    if bad.count:
        shown = "; ".join(f"line {n}: {why}" for n, why in bad.first[:5])
        more = f" (and {bad.count - 5} more)" if bad.count > 5 else ""
        console.print(
            f"[yellow]warning:[/] {bad.count} line(s) of {recording} could not be read and were skipped, the rest"
            f" was replayed: {shown}{more}. --strict stops at the first one instead / 录制文件中有 {bad.count} 行"
            "无法读取，已跳过，其余数据均已重放"
        )
    for site, fit in sorted(result.rhythm.suggestions(offset_h).items()):
        console.print(
            f"[yellow]warning:[/] home {site} is quietest around noon, not at night, at UTC{offset_h:+g}: if the"
            f" recording's clock is not UTC{offset_h:+g}, replay with --utc-offset {fit:g} (night rules, wake-up"
            f" times and day blocks depend on it) / 住户 {site} 在 UTC{offset_h:+g} 下最安静的时段不在夜间："
            f"若录制数据的时钟不是 UTC{offset_h:+g}，请用 --utc-offset {fit:g} 重放"
            "（夜间规则、起床时间和时段都依赖本地时间）"
        )


SECONDS_LIKE_MS = 100_000_000_000
"""Epoch milliseconds below this are before March 1973: a recording stamped so is in seconds."""


def _utc(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_replay_tally(result: ReplayResult, warmup_days: int) -> None:
    """Per home, what would have reached people: the JSONL also holds clears and merged duplicates, which do not."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    from detection.replay import tally

    homes = tally(result, warmup_days=warmup_days)
    if not homes:
        return
    table = Table(
        title="what reached people, per home (updates that notify; clears and duplicates left out) / 每户实际通知",
        title_justify="left",
        caption=(
            f"pages: behavioural pages; per 30 d: pages per 30 days (after day {warmup_days}) in brackets;"
            " asked: check-ins asked (answered); urgent: life-safety; offline: home offline; other: apnoea /"
            " 提醒：行为提醒；"
            f"每30天：括号内为第{warmup_days}天后；询问：已询问（已回应）；断线：网关离线；其他：呼吸暂停"
        ),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    # Short headers in two lines (English, Chinese), explained in the caption, and home ids never cut: an
    # 80-column terminal showed "ordon…" and "behav…" (session 15).
    table.add_column("home\n住户", no_wrap=True, min_width=max(len(h.site) for h in homes))
    for col in (
        "days\n天数",
        "pages\n提醒",
        "per 30 d\n每30天",
        "asked\n询问",
        "urgent\n紧急",
        "device\n设备",
        "offline\n断线",
        "other\n其他",
    ):
        widest = max(cell_len(word) for line in col.splitlines() for word in line.split())
        table.add_column(col, justify="right", overflow="fold", min_width=widest)
    for h in homes:
        table.add_row(
            h.site,
            f"{h.days:.1f}",
            str(h.pages),
            f"{h.pages_per_month:.1f} ({'–' if (late := h.learned_pages_per_month) is None else f'{late:.1f}'})",
            f"{h.prompts} ({h.answered})",
            str(h.life_safety),
            str(h.device),
            str(h.site_offline),
            str(h.other),
        )
    console.print(table)


@app.command()
def evaluate(
    quick: Annotated[bool, typer.Option(help="The small runs the test suite uses instead of the full set.")] = False,
    homes: Annotated[int | None, typer.Option(help="Custom run: homes per run (with --seeds).")] = None,
    days: Annotated[int, typer.Option(help="Custom run: days per run.")] = 14,
    seeds: Annotated[
        str | None, typer.Option(help="Custom run: comma-separated seeds, one run each (needs --homes).")
    ] = None,
    mix: Annotated[str, typer.Option(help="Custom run: scenario mix.")] = "incident-rich",
    markdown: Annotated[Path | None, typer.Option(help="Also write the report as Markdown here.")] = None,
    real: Annotated[
        bool, typer.Option(help="Also score the real homes in the dataset cache ($ELDERCARE_DATASETS).")
    ] = True,
    simulated: Annotated[bool, typer.Option(help="Score the simulated homes.")] = True,
) -> None:
    """Score the detectors on real homes (recordings in the dataset cache) and on simulated homes with ground truth."""
    from detection.evaluate import Run, report_markdown, run_evaluation
    from detection.evaluate import evaluate as run_custom
    from detection.realdata import evaluate as real_eval
    from detection.realdata.sources import cache_dir, missing_by_dataset

    def progress(msg: str) -> None:
        console.print(msg)

    if seeds is not None and homes is None:
        raise typer.BadParameter("--seeds is for a custom run: give --homes too", param_hint="--seeds")
    seed_list: list[int] = []
    if homes is not None:
        try:
            seed_list = [int(s) for s in (seeds or "1").split(",") if s.strip()]
        except ValueError:
            raise typer.BadParameter(
                f"comma-separated integers expected, got {seeds!r}", param_hint="--seeds"
            ) from None
    parts: list[str] = []
    if real:
        missing = {d: names for d, names in missing_by_dataset().items() if names}
        notes = "".join(
            f"\n\nNot evaluated: {len(names)} dataset files missing or changed in {cache_dir() / d}"
            " (see docs/detection.md, 'Real homes', for how to populate the cache)."
            for d, names in missing.items()
        )
        results = real_eval.evaluate_homes(progress=progress)
        parts.append("## Real homes\n\n" + (real_eval.report_markdown(results) if results else "") + notes)
    if simulated:
        if homes is not None:
            runs = [Run(seed=seed, homes=homes, days=days, mix=mix) for seed in seed_list]
            sim = report_markdown(run_custom(runs=runs, progress=progress))
        else:
            sim = run_evaluation(full=not quick, progress=progress)[1]
        parts.append("## Simulated homes\n\n" + sim)
    text = "\n\n".join(parts)
    print(text)
    if markdown is not None:
        markdown.write_text(text)


@app.command("sim-compare")
def sim_compare(
    homes: Annotated[int, typer.Option(help="Simulated homes (normal mix; those living alone are compared).")] = 20,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 28,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
    markdown: Annotated[Path | None, typer.Option(help="Also write the report as Markdown here.")] = None,
) -> None:
    """Compare the simulator's behaviour statistics with the real development homes (docs/simulator.md)."""
    from bench.simcompare import report
    from detection.realdata.sources import TL_DIR, cache_dir, missing_by_dataset

    missing = missing_by_dataset()[TL_DIR]  # the development homes it compares with; Home1 is used when present
    if missing:
        console.print(
            f"[red]{len(missing)} dataset files missing or changed in {cache_dir() / TL_DIR}[/]"
            " (docs/detection.md, 'Real homes', says how to populate the cache)"
        )
        raise typer.Exit(1)
    text = report(homes=homes, days=days, seed=seed, progress=console.print)
    print(text)
    if markdown is not None:
        markdown.write_text(text + "\n")


@bench_app.command("ingest")
def bench_ingest(
    count: Annotated[int, typer.Option(help="Readings per stage.")] = 200_000,
    naive_count: Annotated[int, typer.Option(help="Readings for the naive one-write-per-reading stage.")] = 5_000,
) -> None:
    """MQTT → InfluxDB: mosquitto_sub, bare clients, naive, ours (each client, drain), Node-RED, Z2M."""
    from bench.ingest import run_bench_ingest

    print(run_bench_ingest(count=count, naive_count=naive_count).table())


@bench_app.command("confirm")
def bench_confirm(
    homes: Annotated[int, typer.Option(help="Home gateways publishing (one MQTT connection each).")] = 1_000,
    count: Annotated[int, typer.Option(help="Readings per round.")] = 100_000,
    repeat: Annotated[int, typer.Option(help="Rounds without and with confirmations, alternating.")] = 2,
    interval_ms: Annotated[int, typer.Option(help="ELDERCARE_MQTT_CONFIRM_INTERVAL_MS of the rounds with.")] = 1000,
) -> None:
    """Cost of the gateways' end-to-end acknowledgement: readings/s and pipeline CPU without and with it."""
    from bench.confirm import run_bench_confirm, table

    print(table(run_bench_confirm(homes=homes, count=count, repeat=repeat, interval_ms=interval_ms), homes))


@bench_app.command("scale")
def bench_scale(
    count: Annotated[int, typer.Option(help="Readings per round.")] = 20_000,
    homes: Annotated[int, typer.Option(help="Homes publishing them.")] = 200,
    secured: Annotated[
        bool, typer.Option(help="Each worker count twice: open, then with accounts (one connection per home).")
    ] = False,
    ingress: Annotated[
        str, typer.Option(help="mqtt (the nodes' MQTT listeners), bridge (an edge mosquitto bridged in) or both.")
    ] = "mqtt",
    workers: Annotated[str, typer.Option(help="Comma-separated worker counts, one round each.")] = "1,2,4",
) -> None:
    """Partition workers on a local 3-node NATS cluster: 1, 2, 4 workers (docs/scale-out.md)."""
    from bench.scale import INGRESS, run_bench_scale, table

    paths = INGRESS if ingress == "both" else (ingress,)
    counts = tuple(int(w) for w in workers.split(","))
    print(table(run_bench_scale(count=count, homes=homes, workers=counts, ingress=paths, secured=secured)))


@bench_app.command("join")
def bench_join(
    at_once: Annotated[str, typer.Option(help="Comma-separated: consumers created at once (1: one by one).")] = "1,16",
    rounds: Annotated[int, typer.Option(help="Rounds, each setting on a fresh 3-node cluster.")] = 2,
    partitions: Annotated[int, typer.Option(help="Partitions (one consumer each).")] = 64,
) -> None:
    """A worker's first join of a new NATS cluster: creating the partition consumers (docs/scale-out.md)."""
    from bench.join import run_bench_join, table

    settings = tuple(int(n) for n in at_once.split(","))
    print(table(run_bench_join(at_once=settings, rounds=rounds, partitions=partitions)))


@bench_app.command("detect")
def bench_detect(
    homes: Annotated[int, typer.Option(help="Simulated homes feeding the throughput part.")] = 20,
    days: Annotated[int, typer.Option(help="Simulated days.")] = 2,
    tick_homes: Annotated[int, typer.Option(help="Homes in the timer/tick pass.")] = 100_000,
) -> None:
    """Readings/s through the detectors and the cost of one timer pass over many homes."""
    from bench.detect import bench_detect as run

    print("\n".join(run(homes=homes, days=days, tick_homes=tick_homes).lines()))


@bench_app.command("latency")
def bench_latency(
    homes: Annotated[int, typer.Option(help="Background homes.")] = 10_000,
    presses: Annotated[int, typer.Option(help="Single SOS presses measured.")] = 200,
    burst: Annotated[int, typer.Option(help="Presses in the burst.")] = 10,
) -> None:
    """SOS publish → alert stored → notification dispatched, under background load."""
    from bench.latency import run_bench_latency

    print(run_bench_latency(homes=homes, presses=presses, burst=burst).summary())


@bench_app.command("flood")
def bench_flood(
    flood: Annotated[int, typer.Option(help="Valid readings the attacking home publishes at once.")] = 100_000,
    budget: Annotated[str, typer.Option(help="ELDERCARE_SITE_BUDGET of the second round (rate/burst).")] = "50/20000",
) -> None:
    """One home floods valid telemetry: a Z2M neighbour's press → alert, per-home budget off vs on."""
    from bench.flood import run_bench_flood

    print(run_bench_flood(flood=flood, budget=budget).summary())


@bench_app.command("recovery")
def bench_recovery(
    homes: Annotated[int, typer.Option(help="Homes watched by the restored engine.")] = 10_000,
) -> None:
    """Restart recovery at N homes: time, peak RSS and live-SOS wait, old restore vs background catch-up."""
    from bench.recovery import run_bench_recovery, table

    print(table(run_bench_recovery(homes=homes), homes))


@bench_app.command("watch")
def bench_watch(
    count: Annotated[int, typer.Option(help="Wristband readings per stage.")] = 20_000,
    presses: Annotated[int, typer.Option(help="SOS presses per path (latency).")] = 20,
) -> None:
    """4G watches over TCP vs contract v1 wristbands over MQTT: readings/s and SOS latency, in one run."""
    from bench.watch import run_bench_watch

    print(run_bench_watch(count=count, presses=presses).table())


@bench_app.command("refit")
def bench_refit(
    homes: Annotated[list[int] | None, typer.Option("--homes", help="Home counts to fit (repeatable).")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Runs per method (alternating); the best counts.")] = 5,
) -> None:
    """Baseline fit with row-wise quantiles vs NumPy's per-row routines, same histories, same run."""
    from bench.refit import run_bench_refit, table

    print(table(run_bench_refit(homes=homes or [1, 10_000], repeat=repeat)))


@bench_app.command("snapshot")
def bench_snapshot(
    homes: Annotated[list[int] | None, typer.Option(help="Home counts (repeat the option).")] = None,
    repeat: Annotated[int, typer.Option(help="Saves per method and home count.")] = 3,
) -> None:
    """Longest event-loop stall while the engine snapshot is saved: one blocking call vs slices."""
    from bench.snapshot import run_bench_snapshot

    print(run_bench_snapshot(homes=homes or [10_000, 100_000], repeat=repeat).table())


@deadletter_app.command("list")
def deadletter_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason (e.g. bad_json, out_of_range).")] = None,
    site: Annotated[str | None, typer.Option(help="Only this home.")] = None,
    limit: Annotated[int, typer.Option(help="Most entries shown.")] = 50,
    payload: Annotated[bool, typer.Option(help="Show payload previews (may contain personal data).")] = False,
) -> None:
    """Refused messages, newest first, with topic, reason and detail."""
    from eldercare.settings import Settings
    from gateway.deadletter import DeadLetterStore, format_entries
    from gateway.errors import Reason

    store = DeadLetterStore.in_data_dir(Settings().data_dir)
    try:
        entries = store.query(reason=Reason(reason) if reason else None, site=site, limit=limit)
        if payload:  # what devices sent (readings, positions): audited like every read of personal data
            from eldercare.backend import wall_ms
            from eldercare.privacy import operator
            from eldercare.production import open_store

            audit = open_store(_store_settings())
            try:
                audit.audit(
                    now_ms=wall_ms(), actor=operator(), channel="system", action="deadletter.payloads_read",
                    entity="deadletter", entity_id=site or "*",
                    detail={"entries": len(entries), "reason": reason or "", "site": site or ""},
                )  # fmt: skip
            finally:
                audit.close()
        print(format_entries(entries, show_payload=payload))
    finally:
        store.close()


@deadletter_app.command("stats")
def deadletter_stats() -> None:
    """How many messages were refused, by reason; and those only counted (beyond a home's budget), by home."""
    from eldercare.settings import Settings
    from gateway.deadletter import DeadLetterStore, format_stats

    store = DeadLetterStore.in_data_dir(Settings().data_dir)
    try:
        print(format_stats(store.count_by_reason(), store.counted()))
    finally:
        store.close()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to ELDERCARE_DATABASE_URL."""
    from alerts.store.repository import AlertStore
    from alerts.store.urls import masked_url

    settings = _store_settings()
    store = AlertStore(url=settings.database_url, migrate=False)
    try:
        before = store.current_revision()  # StoreUnavailable (one line) when the store cannot be reached
        store.migrate()
        after = store.current_revision()
    finally:
        store.close()
    where = masked_url(settings.database_url)
    if before == after:
        console.print(f"database {where} is at the latest schema ({after}) / 数据库结构已是最新", soft_wrap=True)
    else:
        console.print(
            f"database {where} migrated from {before or 'empty'} to {after} / 数据库结构已升级", soft_wrap=True
        )


@db_app.command("import-registry")
def db_import_registry(
    path: Annotated[Path, typer.Argument(help="Registry JSON (docs/registry.md).")],
) -> None:
    """Import (idempotently) a registry document: hierarchy, workers, homes, devices, residents."""
    from alerts.lifecycle import Channel
    from alerts.store.repository import AlertStore
    from eldercare.backend import wall_ms
    from eldercare.privacy import operator

    store = AlertStore(url=_store_settings().database_url, migrate="new")
    try:
        print(store.import_registry(path.read_bytes(), now_ms=wall_ms(), actor=operator(), channel=Channel.SYSTEM))
    finally:
        store.close()


@arc_app.command("test")
def arc_test(
    host: Annotated[str | None, typer.Option(help="ARC host (default ELDERCARE_ARC_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="ARC port (default ELDERCARE_ARC_PORT).")] = None,
    account: Annotated[str | None, typer.Option(help="Account (default: the link-test account).")] = None,
) -> None:
    """Send a Contact ID 602 periodic test event to the ARC and print its answer (exit 1 unless ACK)."""
    import time

    from alerts.arc.channel import send_test_event, seq_of
    from alerts.arc.client import ArcClient
    from alerts.arc.errors import DeliveryError
    from alerts.arc.events import ArcConfig
    from eldercare.backend import arc_key
    from eldercare.settings import Settings

    settings = Settings()
    target_host, target_port = host or settings.arc_host, port or settings.arc_port
    if not target_host or not target_port:
        console.print(
            "未配置报警中心 / no ARC configured: set ELDERCARE_ARC_HOST and ELDERCARE_ARC_PORT (or --host/--port)"
        )
        raise typer.Exit(2)
    config = ArcConfig(
        host=target_host, port=target_port, accounts=dict(settings.arc_accounts),
        community_accounts=dict(settings.arc_community_accounts), account_prefix=settings.arc_account_prefix,
        receiver=settings.arc_receiver, line=settings.arc_line,
        timeout_s=settings.arc_timeout_s,
    )  # fmt: skip
    client = ArcClient(host=target_host, port=target_port, receiver=config.receiver, line=config.line,
                       timeout_s=config.timeout_s, key=arc_key(settings))  # fmt: skip
    acct = account or config.link_account()
    try:
        answer = asyncio.run(send_test_event(client, account=acct, seq=seq_of(int(time.time()))))
    except DeliveryError as exc:
        print(f"报警中心未确认测试事件 / ARC did not acknowledge the test event: {exc}")
        raise typer.Exit(1) from None
    except ValueError as exc:
        console.print(f"配置错误 / bad ARC setting: {exc}")
        raise typer.Exit(2) from None
    print(
        f"报警中心已确认 / ARC {client.target} answered {answer.kind} "
        f"(Contact ID 1602, account {acct}, seq {answer.seq:04d}{', AES' if client.encrypted else ''})"
    )


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _operator_error(exc: BaseException) -> tuple[str, int] | None:
    """One line and an exit code for a mistake an operator can fix, or None for a bug (then the traceback shows).

    Configuration errors (a wrong setting, an unreachable or misnamed store, a busy port, an unreadable file named
    by a setting) exit with 2; other operating errors with 1. Task groups (``serve``) are looked into.
    """
    from pydantic import ValidationError

    from alerts.store.errors import StoreSchemaMismatch, StoreUnavailable
    from dashboards.serve import ConsolePortBusy
    from eldercare.production import ConfigError

    for leaf in _leaves(exc):
        if isinstance(leaf, ValidationError):
            lines = []
            for e in leaf.errors():
                msg = str(e.get("msg", "")).removeprefix("Value error, ")
                loc = "_".join(str(part) for part in e.get("loc", ()))
                lines.append(f"ELDERCARE_{loc.upper()}: {msg}" if loc else msg)
            return f"配置错误 / configuration error: {'; '.join(lines)}", 2
        if isinstance(leaf, ConfigError | StoreUnavailable | StoreSchemaMismatch | ConsolePortBusy):
            return f"配置错误 / configuration error: {leaf}", 2
        if isinstance(leaf, OSError) and leaf.filename is not None:
            return f"{leaf.strerror or type(leaf).__name__}: {leaf.filename}", 1
    return None


def main() -> None:
    """Console-script entry point: an operator's mistake is one clear line (zh/en), not a traceback."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an operator's mistake with one clear line
        known = _operator_error(exc)
        if known is None:
            raise
        message, code = known
        Console(stderr=True).print(f"[red]{escape(message)}[/red]", highlight=False, soft_wrap=True)
        raise SystemExit(code) from None


if __name__ == "__main__":
    main()
