"""``eldercare broker …``: the production mosquitto's configuration and the home gateways' accounts.

Run on the broker host as the service user with the deployment's environment loaded (``ELDERCARE_GATEWAY_SECRET``,
``ELDERCARE_MQTT_USERNAME`` / ``ELDERCARE_MQTT_PASSWORD`` of the backend account, ``ELDERCARE_DATABASE_URL`` of the
store that holds the registry): it writes into the install step's setgid directory, and root tells the broker
(``systemctl reload mosquitto``); run as root with a store root may open, it signals the broker itself.
docs/operations.md, "Home gateways: add, revoke, reinstate".
"""

from __future__ import annotations

import grp
import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from eldercare.servers.mosquitto import BROKER_DIR, CERTS_DIR, production_conf, write_account_file
from gateway.provisioning import gateway_password, render_acl, render_backend_acl, render_password_file

if TYPE_CHECKING:  # the store is imported when a command runs (the CLI starts fast)
    from alerts.store.gateway_accounts import GatewayAccount, GatewayAccounts
    from alerts.store.repository import AlertStore
    from eldercare.settings import Settings

broker_app = typer.Typer(help="The production broker: its configuration and the home gateways' accounts.")
console = Console(stderr=True)

PID_FILE = Path("/run/mosquitto/mosquitto.pid")
"""Debian's mosquitto writes its pid here (``pid_file`` in /etc/mosquitto/mosquitto.conf)."""

OutDir = Annotated[Path, typer.Option("--dir", help="Where the broker's account and ACL files live.")]
PidFile = Annotated[Path, typer.Option(help="The running broker's pid file: it is sent SIGHUP to re-read the files.")]
Reload = Annotated[bool, typer.Option(help="Signal the broker (--no-reload: only write the files).")]


class BrokerSetupError(Exception):
    """A precondition of a broker command failed (the message says what to do)."""


def _actor() -> str:
    from eldercare.privacy import operator  # one rule for every operator command's audit actor

    return operator()


def _now_ms() -> int:
    return int(time.time() * 1000)


def write_accounts(
    out: Path,
    accounts: list[GatewayAccount],
    *,
    secret: str,
    backend_user: str,
    backend_password: str,
    group: str | None = "mosquitto",
) -> tuple[int, int]:
    """Write the gateways' and the backend's password files and ACLs into ``out``; ``(active, revoked)``.

    Files are 0640 in group ``group`` (the broker's) so the broker can read them and nobody else. The install step
    creates ``out`` for the service user, ``eldercare:mosquitto`` 2750 (setgid: new files take the broker's group),
    so the service user, who can read the store, writes them; run as root, files and a new directory are chowned to
    the group instead. A revoked account is in neither file: the broker refuses its login and, at the reload,
    closes a connection it still holds.
    """
    if not secret:
        raise BrokerSetupError("ELDERCARE_GATEWAY_SECRET is not set: it derives every gateway's password")
    if not backend_password:
        raise BrokerSetupError("ELDERCARE_MQTT_PASSWORD is not set: the backend's broker account needs it")
    gid: int | None = None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise BrokerSetupError(f"group {group!r} does not exist (is mosquitto installed?)") from None
    root = os.geteuid() == 0
    try:
        if not out.exists():
            out.mkdir(parents=True, mode=0o750)
            if root and gid is not None:
                os.chown(out, 0, gid)
        os.chmod(out, 0o750 | (out.stat().st_mode & stat.S_ISGID))  # keep the setgid bit of the install step
        active = [a for a in accounts if a.active]
        files = {
            "gateways.passwd": render_password_file(
                {a.site: gateway_password(secret, a.site, a.generation) for a in active}
            ),
            "gateways.acl": render_acl(sites=[a.site for a in active]),
            "backend.passwd": render_password_file({backend_user: backend_password}),
            "backend.acl": render_backend_acl(backend_user=backend_user),
        }
        for name, text in files.items():
            write_account_file(out / name, text, mode=0o640, gid=gid if root else None)
    except PermissionError as exc:
        raise BrokerSetupError(
            f"cannot write {exc.filename or out} ({exc.strerror}): create the directory for the service user as"
            f" the install step says: `install -d -o eldercare -g mosquitto -m 2750 {out}`"
        ) from None
    if gid is not None and any((out / name).stat().st_gid != gid for name in files):
        raise BrokerSetupError(
            f"the files in {out} are not in group {group!r}, so the broker cannot read them: recreate the directory"
            f" with `install -d -o eldercare -g mosquitto -m 2750 {out}` (setgid) and run this again"
        )
    return len(active), len(accounts) - len(active)


def reload_broker(pid_file: Path | None) -> int | None:
    """SIGHUP the broker named by ``pid_file`` (it re-reads password files and ACLs); its pid, or None.

    On the reload mosquitto also re-checks every connected client: a revoked gateway's connection is closed.
    """
    if pid_file is None:
        return None
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except PermissionError:
        raise BrokerSetupError(
            "the files are written, but this user may not signal the broker: run `systemctl reload mosquitto` as"
            " root, then `eldercare broker check` (until then the broker keeps its old accounts)"
        ) from None
    except (OSError, ValueError) as exc:
        raise BrokerSetupError(
            f"could not signal the broker through {pid_file} ({exc}); the files are written:"
            " run `systemctl reload mosquitto` as root, then `eldercare broker check`"
        ) from None
    return pid


def check_backend(settings: Settings, *, timeout_s: float = 10.0) -> str:
    """Wait until the broker accepts the backend's account on its listener; what it said, or a setup error.

    A reload cannot add listeners (mosquitto logs it and keeps running without them): after installing or changing
    ``conf.d/eldercare.conf`` the broker must be restarted, and this is how a provisioning run notices.
    """
    from gateway.listener import probe_credentials

    host, port = settings.mqtt_host, settings.mqtt_port
    deadline = time.monotonic() + timeout_s
    while not probe_credentials(
        host=host, port=port, username=settings.mqtt_username, password=settings.mqtt_password.get_secret_value()
    ):
        if time.monotonic() > deadline:
            raise BrokerSetupError(
                f"the broker does not accept the backend's account on {host}:{port}: if its configuration was"
                " installed or changed, restart it (`systemctl restart mosquitto`: a reload cannot add listeners),"
                " and read its log (/var/log/mosquitto/mosquitto.log)"
            )
        time.sleep(0.2)
    return f"the broker accepts the backend's account on {host}:{port}"


def check_certificates(settings: Settings, *, now_s: float | None = None) -> list[tuple[str, bool]]:
    """How long the broker's ``ca.crt`` and ``server.crt`` in ``ELDERCARE_BACKUP_TLS_DIR`` stay valid.

    One (line, warn) per certificate found, ``warn`` when fewer than :data:`eldercare.certs.EXPIRY_WARN_DAYS`
    days are left; raises :class:`BrokerSetupError` when one has expired (every gateway refuses the broker then).
    Nothing without the setting (the certificates are kept elsewhere).
    """
    from eldercare.certs import validity

    tls = settings.backup_tls_dir
    if tls is None:
        return []
    lines: list[tuple[str, bool]] = []
    expired: list[str] = []
    for cert in validity([tls / "ca.crt", tls / "server.crt"], now_s=now_s):
        name, day, days = Path(cert.path).name, cert.date, cert.days_left
        if cert.expired:
            expired.append(f"{cert.path} expired on {day}")
        elif cert.expiring:
            lines.append((f"{name} expires on {day}, in {days:.0f} days: renew it (docs/operations.md, step 5)"
                          f" / 证书将于 {day} 到期，请续期", True))  # fmt: skip
        else:
            lines.append((f"{name} valid until {day} ({days:.0f} days)", False))
    if expired:
        raise BrokerSetupError(
            f"{'; '.join(expired)}: every gateway refuses the broker; renew it (docs/operations.md, step 5)"
            " / 证书已过期，所有网关都无法连接"
        )
    return lines


def _provision(settings: Settings, store: AlertStore, out: Path, pid_file: Path | None) -> str:
    from alerts.store.gateway_accounts import GatewayAccounts

    accounts = GatewayAccounts(store).all()
    if not accounts:
        # Files without a single home would take every gateway off the broker: almost surely the wrong store.
        from alerts.store.urls import masked_url

        raise BrokerSetupError(
            f"the store {masked_url(settings.database_url)} holds no home: import the registry first"
            " (`eldercare db import-registry`), or check ELDERCARE_DATABASE_URL; nothing was written"
        )
    active, revoked = write_accounts(
        out,
        accounts,
        secret=settings.gateway_secret.get_secret_value(),
        backend_user=settings.mqtt_username,
        backend_password=settings.mqtt_password.get_secret_value(),
    )
    store.audit(
        now_ms=_now_ms(),
        actor=_actor(),
        channel="cli",
        action="gateway.provision",
        entity="broker",
        entity_id=str(out),
        detail={"active": active, "revoked": revoked},
    )
    console.print(f"{active} gateway accounts written to {out}, {revoked} revoked left out")
    pid = reload_broker(pid_file)
    if pid is None:
        return "broker not signalled: `systemctl reload mosquitto` as root, then `eldercare broker check`"
    return f"broker reloaded (pid {pid}); {check_backend(settings)}"


def _run(fn: Callable[[], None]) -> None:
    """Run a command body; a setup error is one line on stderr and exit code 2."""
    try:
        fn()
    except BrokerSetupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _open() -> tuple[Settings, AlertStore, GatewayAccounts]:
    from alerts.store.gateway_accounts import GatewayAccounts
    from alerts.store.repository import AlertStore
    from eldercare.production import ConfigError, store_settings

    try:
        # Run without the env file, this would read an empty SQLite store and write files without any gateway.
        settings = store_settings()
    except ConfigError as exc:
        raise BrokerSetupError(str(exc)) from None
    store = AlertStore(url=settings.database_url, migrate="new")
    return settings, store, GatewayAccounts(store)


@broker_app.command("config")
def config(
    out: Annotated[Path | None, typer.Option(help="Write it here (0644) instead of printing it.")] = None,
    backend_port: Annotated[int, typer.Option(help="The backend's listener (loopback).")] = 1883,
    gateway_port: Annotated[int, typer.Option(help="The gateways' MQTT-over-TLS listener.")] = 8883,
    accounts_dir: OutDir = BROKER_DIR,
    certs_dir: Annotated[Path, typer.Option(help="ca.crt, server.crt, server.key (`eldercare certs`).")] = CERTS_DIR,
    require_client_cert: Annotated[bool, typer.Option(help="Gateways must also present a client certificate.")] = False,
) -> None:
    """Print /etc/mosquitto/conf.d/eldercare.conf: the broker configuration the test suite attacks."""
    text = production_conf(
        accounts_dir=accounts_dir,
        certs_dir=certs_dir,
        backend_port=backend_port,
        gateway_port=gateway_port,
        require_client_cert=require_client_cert,
    )
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


def _with_store(fn: Callable[[Settings, AlertStore, GatewayAccounts], None]) -> None:
    """Run ``fn`` with the settings, the store and its gateway accounts; the store closed after."""

    def body() -> None:
        settings, store, accounts = _open()
        try:
            fn(settings, store, accounts)
        finally:
            store.close()

    _run(body)


def _change(
    site: str,
    change: Callable[[GatewayAccounts], GatewayAccount],
    said: Callable[[GatewayAccount], str],
    out: Path,
    pid_file: Path | None,
) -> None:
    """Apply one account change (audited by the store), say what it did, then rewrite the files and reload."""

    def fn(settings: Settings, store: AlertStore, accounts: GatewayAccounts) -> None:
        try:
            acc = change(accounts)
        except KeyError:
            raise BrokerSetupError(f"no registered home {site!r}") from None
        console.print(said(acc))
        console.print(_provision(settings, store, out, pid_file))

    _with_store(fn)


@broker_app.command("check")
def check() -> None:
    """Check that the running broker accepts the backend's account, and how long its certificates stay valid."""

    def body() -> None:
        from eldercare.settings import Settings

        settings = Settings()
        console.print(check_backend(settings))
        for line, warn in check_certificates(settings):
            console.print(f"[yellow]warning:[/] {escape(line)}" if warn else escape(line))

    _run(body)


@broker_app.command("end-session")
def end_session(
    client_id: Annotated[str, typer.Argument(help="A retired backend's ELDERCARE_MQTT_CLIENT_ID (not this one's).")],
) -> None:
    """Discard the sessions the broker keeps for a retired backend client id (its main and -priority ones).

    After ELDERCARE_MQTT_CLIENT_ID was changed, or a backend was retired, the broker keeps queueing every home's
    uplinks for the old id (docs/operations.md, "Retiring a backend client id").
    """

    def body() -> None:
        from eldercare.settings import Settings
        from gateway.listener import end_kept_session
        from gateway.sessions import priority_client_id

        settings = Settings()
        own = (settings.mqtt_client_id, priority_client_id(settings.mqtt_client_id))
        if client_id in own:
            raise BrokerSetupError(
                f"{client_id!r} is this backend's own client id (ELDERCARE_MQTT_CLIENT_ID): ending its session would"
                f" discard what the broker keeps for it / {client_id!r} 是本后端自己的客户端 ID，不能结束它的会话"
            )
        for cid in (client_id, priority_client_id(client_id)):
            try:
                had = end_kept_session(
                    host=settings.mqtt_host,
                    port=settings.mqtt_port,
                    username=settings.mqtt_username,
                    password=settings.mqtt_password.get_secret_value(),
                    client_id=cid,
                )
            except ConnectionError as exc:
                raise BrokerSetupError(str(exc)) from None
            console.print(
                f"{escape(cid)}: session ended / 会话已结束"
                if had
                else f"{escape(cid)}: no session kept / 代理未保留该会话"
            )

    _run(body)


@broker_app.command("provision")
def provision(out: OutDir = BROKER_DIR, pid_file: PidFile = PID_FILE, reload: Reload = True) -> None:
    """Write every registered home gateway's account (revoked ones left out) and the backend's, then reload."""

    def fn(settings: Settings, store: AlertStore, _accounts: GatewayAccounts) -> None:
        console.print(_provision(settings, store, out, pid_file if reload else None))

    _with_store(fn)


@broker_app.command("revoke")
def revoke(
    site: Annotated[str, typer.Argument(help="The home's site id (its gateway's MQTT username).")],
    reason: Annotated[str, typer.Option(help="Why (audited), e.g. 'gateway box stolen'.")],
    out: OutDir = BROKER_DIR,
    pid_file: PidFile = PID_FILE,
    reload: Reload = True,
) -> None:
    """Take a home gateway off the broker now; its password never works again (audited)."""
    _change(
        site,
        lambda accounts: accounts.revoke(site, reason=reason, actor=_actor(), now_ms=_now_ms()),
        lambda acc: f"revoked {site} (key generation now {acc.generation})",
        out,
        pid_file if reload else None,
    )


@broker_app.command("reinstate")
def reinstate(
    site: Annotated[str, typer.Argument(help="The home's site id.")],
    out: OutDir = BROKER_DIR,
    pid_file: PidFile = PID_FILE,
    reload: Reload = True,
) -> None:
    """Let a revoked home's (new) gateway back on with a new password (`eldercare broker password SITE`)."""
    _change(
        site,
        lambda accounts: accounts.reinstate(site, actor=_actor(), now_ms=_now_ms()),
        lambda acc: f"reinstated {site} (key generation {acc.generation}: configure the gateway anew)",
        out,
        pid_file if reload else None,
    )


@broker_app.command("password")
def password(site: Annotated[str, typer.Argument(help="The home's site id.")]) -> None:
    """Print a home gateway's current MQTT password (for the installer configuring the box; audited)."""

    def fn(settings: Settings, store: AlertStore, accounts: GatewayAccounts) -> None:
        secret = settings.gateway_secret.get_secret_value()
        if not secret:
            raise BrokerSetupError("ELDERCARE_GATEWAY_SECRET is not set: it derives every gateway's password")
        acc = accounts.get(site)
        if acc is None:
            raise BrokerSetupError(f"no registered home {site!r}")
        if not acc.active:
            raise BrokerSetupError(f"{site} is revoked ({acc.reason}): `eldercare broker reinstate {site}` first")
        store.audit(
            now_ms=_now_ms(),
            actor=_actor(),
            channel="cli",
            action="gateway.password",
            entity="gateway",
            entity_id=site,
            detail={"generation": acc.generation},
        )
        print(gateway_password(secret, site, acc.generation))

    _with_store(fn)
