"""``eldercare backup`` / ``eldercare restore``: the store, the telemetry and the detector state in one directory.

A backup directory holds:

- ``store.sqlite`` (SQLite online backup API: consistent while the backend writes) or ``store.pgdump``
  (``pg_dump --format=custom``) for PostgreSQL;
- ``influx/``: ``influxd backup -portable`` of the telemetry database (through influxd's RPC address,
  ``ELDERCARE_INFLUX_BACKUP_HOST``);
- ``detect/``: the detection engine's snapshot, so restored homes keep their timers and baselines;
- ``deadletter.sqlite3``: the dead-letter record of refused messages (SQLite online backup);
- ``tls/``: the broker's TLS files with the local CA's private key (``ELDERCARE_BACKUP_TLS_DIR``): without that
  key a rebuilt server's certificate is rejected by every deployed gateway;
- ``policies.json``: the escalation policies (``ELDERCARE_POLICIES_PATH``), when set. Not put back by a restore:
  the setting names where it belongs, and no process starts while that file is missing (copy it back first);
- ``manifest.json``: when, from where, the row count of every store table (compared after a restore), and the size
  and SHA-256 of every other file (``eldercare verify-backup``; a restore checks them first).

Deliberately not copied: the env file's secrets (they belong in the deployment's secret store) and the broker's
password/ACL files (regenerated from ``ELDERCARE_GATEWAY_SECRET`` and the registry by ``eldercare broker
provision``). The backup holds personal data and the CA key: it is written 0700/0600 and must be stored encrypted
(docs/operations.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerts.store.errors import first_line
from alerts.store.gauges import other_sessions, ping
from alerts.store.repository import AlertStore, sqlite_copy_counts
from alerts.store.urls import CONNECT_TIMEOUT_S, driver_name, libpq_url_without_password, masked_url, sqlite_file
from eldercare.backup_status import BACKUP_DONE, BACKUP_FAILED, record_outcome
from eldercare.backup_verify import FILES_KEY, MANIFEST, ManifestError, file_sums, read_manifest, verify
from eldercare.privacy import operator
from eldercare.production import DataDirBusy, secure_data_dir, serve_lock
from eldercare.settings import Settings, influx_client
from gateway.deadletter import FILE_NAME as DEADLETTER_FILE

_LOG = logging.getLogger(__name__)

POLICIES_FILE = "policies.json"
"""The escalation policies' copy in a backup."""


Progress = Callable[[str], None]
"""Where a backup or restore says each step as it ends (the CLI prints it; the nightly timer's journal keeps it)."""


def _quiet(line: str) -> None:
    """No progress lines (the default for callers that print their own)."""


def _size(path: Path) -> str:
    """``path``'s size (a directory: its files'), in MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB"


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says which and why."""


def _run(args: list[str], *, what: str, env: dict[str, str] | None = None) -> None:
    binary = shutil.which(args[0])
    if binary is None:
        raise BackupError(f"{what}: the {args[0]} command is missing")
    done = subprocess.run(
        [binary, *args[1:]], capture_output=True, text=True, timeout=3600, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {(done.stderr or done.stdout).strip()[-800:]}")


def _pg_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL without the password and the environment that carries it (``PGPASSWORD``, not in ``ps``).

    The store's connect timeout applies to pg_dump and pg_restore too (``PGCONNECT_TIMEOUT``; a ``connect_timeout``
    in the URL or the variable set by the operator wins), so a server that never answers ends the command.
    """
    url, password = libpq_url_without_password(database_url)
    env = {"PGPASSWORD": password} if password is not None else {}
    if "PGCONNECT_TIMEOUT" not in os.environ:
        env["PGCONNECT_TIMEOUT"] = str(CONNECT_TIMEOUT_S)
    return url, env


def pg_dump(database_url: str, out: Path, *, snapshot: str | None = None) -> None:
    """``pg_dump --format=custom`` of the store into ``out``; the password never appears on the command line.

    ``snapshot``: dump the data as an open transaction's exported snapshot sees it (``pg_export_snapshot()``).
    """
    url, env = _pg_target(database_url)
    at = [f"--snapshot={snapshot}"] if snapshot is not None else []
    _run(["pg_dump", "--format=custom", "--no-owner", *at, f"--file={out}", f"--dbname={url}"], what="pg_dump",
         env=env)  # fmt: skip


def _pg_dump_counted(database_url: str, out: Path) -> tuple[dict[str, int], str | None]:
    """:func:`pg_dump` into ``out``, and the row counts and schema revision of exactly what it holds.

    Counted in the snapshot the dump reads (``AlertStore.counted_snapshot``): the services keep writing meanwhile
    (every console page audits), and counts read after the dump differed from it.
    """
    store = AlertStore(url=database_url, migrate=False)
    try:
        return store.counted_snapshot(lambda snapshot: pg_dump(database_url, out, snapshot=snapshot))
    finally:
        store.close()


def pg_restore(database_url: str, dump: Path) -> None:
    """``pg_restore --clean`` of ``dump`` into the store; the password goes through ``PGPASSWORD``."""
    url, env = _pg_target(database_url)
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={url}", str(dump)],
         what="pg_restore", env=env)  # fmt: skip


def _sqlite_path(database_url: str) -> Path:
    database = sqlite_file(database_url)
    if database is None:
        raise BackupError("the SQLite URL names no file")
    return database


def _sqlite_copy(src: Path, dst: Path, *, standalone: bool = False) -> None:
    """Copy a live SQLite database page by page (the online backup API), consistent at one instant.

    ``standalone``: the copy (a backup's) is left in rollback-journal mode, one self-contained file: a copy in WAL
    mode, the live store's, gets ``-wal`` / ``-shm`` files beside it from every later reader, restores included,
    which then read as files the backup never wrote.
    """
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as source, sqlite3.connect(dst) as target:
        source.backup(target)
        if standalone:
            target.execute("PRAGMA journal_mode=DELETE")
    source.close()
    target.close()


def store_counts(settings: Settings) -> dict[str, int]:
    """Row counts of every store table; the store's schema is left as it is (``eldercare db upgrade`` migrates)."""
    store = AlertStore(url=settings.database_url, migrate=False)
    try:
        return store.counts()
    finally:
        store.close()


def _install_hint(path: Path) -> str:
    return f"create it for the user running the backup, e.g. `install -d -o eldercare -m 0700 {path}`"


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a parent this user may not enter (e.g. /root) fails with the fix, not a traceback."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackupError(
            f"cannot reach the backup directory {path}: {exc.strerror}; {_install_hint(path)} / 无法访问备份目录 {path}"
        ) from None
    return True


def _private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents 0700, or fail with one line naming the directory and the fix."""
    missing = [p for p in (path, *path.parents) if not _exists(p)]
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise BackupError(
                f"cannot create the backup directory {p}: {exc.strerror}; {_install_hint(p)} / 无法创建备份目录 {p}"
            ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BackupError(
            f"the backup directory {path} is not writable by this user; `install -d -o eldercare -m 0700 {path}`"
            f" / 备份目录 {path} 不可写"
        )


def _tcp_reachable(address: str, *, timeout_s: float = 3.0) -> str | None:
    """None when ``host:port`` accepts a TCP connection within ``timeout_s``, else why not."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return None
    except ValueError:
        return "not a host:port address"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _check_backup(settings: Settings, out: Path, *, influx: bool) -> None:
    """Every precondition of a backup, checked before anything is written (influxd retried for minutes)."""
    if _exists(out) and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a new directory")
    url = settings.database_url
    if url.startswith("sqlite"):
        if not _sqlite_path(url).is_file():
            raise BackupError(f"the SQLite store {_sqlite_path(url)} does not exist (ELDERCARE_DATABASE_URL)")
    elif url.startswith("postgresql"):
        if shutil.which("pg_dump") is None:
            raise BackupError("the pg_dump command is missing (Debian: postgresql-client)")
        _ping_store(url)
    else:
        raise BackupError(f"unsupported database URL scheme in {driver_name(url)!r}")
    if influx:
        if settings.influx_token is not None:
            # InfluxDB 2.x and 3.x serve the v1 write/query API the backend uses, but not 1.x's RPC backup port.
            raise BackupError(
                "the telemetry backup is InfluxDB 1.x's `influxd backup -portable`; with InfluxDB 2.x or 3.x"
                " (ELDERCARE_INFLUX_TOKEN is set) back the telemetry up with that server's own tool (2.x: `influx"
                ' backup`) and run eldercare backup --no-influx (docs/operations.md, "Backups")'
                " / InfluxDB 2.x/3.x 的遥测数据请用其自带工具备份，并加 --no-influx"
            )
        if shutil.which("influxd") is None:
            raise BackupError("the influxd command is missing (influxd backup writes the telemetry), or --no-influx")
        # influxd itself only says "backup: EOF".
        if not asyncio.run(_influx_db_exists(settings, settings.influx_db)):
            raise BackupError(
                f"the InfluxDB database {settings.influx_db!r} does not exist at {settings.influx_url}: check"
                " ELDERCARE_INFLUX_DB (the backend creates it on its first start), or back up with --no-influx"
                f" / InfluxDB 数据库 {settings.influx_db} 不存在"
            )
        # influxd backup retries an unreachable RPC address for minutes, leaving partial files behind.
        why = _tcp_reachable(settings.influx_backup_host)
        if why is not None:
            raise BackupError(
                f"InfluxDB's backup port ELDERCARE_INFLUX_BACKUP_HOST {settings.influx_backup_host} cannot be reached"
                f" ({why}): is influxd's bind-address (8088) on that address? or back up with --no-influx"
                " / 无法连接 InfluxDB 备份端口"
            )
    tls = settings.backup_tls_dir
    if tls is not None and not (tls.is_dir() and os.access(tls, os.R_OK | os.X_OK)):
        raise BackupError(
            f"ELDERCARE_BACKUP_TLS_DIR {tls} is not a directory this user can read (the broker's certificates and"
            " the CA key: docs/operations.md, step 5)"
        )


def backup(settings: Settings, out: Path, *, influx: bool = True, progress: Progress = _quiet) -> dict[str, Any]:
    """Write a backup of the deployment into the new directory ``out``; returns the manifest.

    Every precondition (the directory is new, the store answers, InfluxDB's HTTP API and backup port answer, the
    TLS directory is readable) is checked before anything is written; a failed check says "nothing was written".
    A step failing later removes what was written into ``out``, so a directory without ``manifest.json`` is never
    left to be taken for a backup. Missing parent directories are created 0700 (e.g. ``/var/backups/eldercare`` on
    the first nightly run) and stay.
    """
    try:
        manifest = _backup(settings, out, influx=influx, progress=progress)
    except BaseException as exc:
        record_outcome(settings.data_dir, out, error=first_line(exc))
        _audit_outcome(settings, out, error=first_line(exc))
        raise
    record_outcome(settings.data_dir, out, error=None)
    _audit_outcome(settings, out, error=None)
    return manifest


def _audit_outcome(settings: Settings, out: Path, *, error: str | None) -> None:
    """The outcome in the store's audit log too (entity ``backup``): a console on another host reads it there.

    Best effort: the store may be what failed. A SQLite file that does not exist is not created for it.
    """
    url = settings.database_url
    if url.startswith("sqlite") and not ((path := sqlite_file(url)) is not None and path.is_file()):
        return
    detail = {"dir": str(out), **({"error": error} if error is not None else {})}
    try:
        _audit_backup(url, out, BACKUP_FAILED if error is not None else BACKUP_DONE, detail)
    except Exception as exc:  # noqa: BLE001 - the status file and the exit code still say it
        _LOG.warning("the backup's outcome could not be recorded in the store: %s", first_line(exc))


def _audit_backup(url: str, out: Path, action: str, detail: dict[str, Any]) -> None:
    """One audit entry on the backup ``out`` (entity ``backup``), by the operator running the command."""
    store = AlertStore(url=url, migrate=False)
    try:
        store.audit(now_ms=int(time.time() * 1000), actor=operator(), channel="system", action=action,
                    entity="backup", entity_id=out.name, detail=detail)  # fmt: skip
    finally:
        store.close()


def _backup(settings: Settings, out: Path, *, influx: bool, progress: Progress) -> dict[str, Any]:
    try:
        _check_backup(settings, out, influx=influx)
        created = not _exists(out)
        _private_dir(out)
    except BackupError as exc:
        raise BackupError(f"{exc}; nothing was written / 未写入任何文件") from None
    try:
        return _write_backup(settings, out, influx=influx, progress=progress)
    except BaseException as exc:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:  # an empty directory made for it (e.g. `install -d`): keep it, empty again
            for child in out.iterdir() if out.is_dir() else ():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        if isinstance(exc, BackupError):
            raise BackupError(f"{exc}; the partial backup in {out} was removed / 未完成的备份已删除") from None
        raise


def _write_backup(settings: Settings, out: Path, *, influx: bool, progress: Progress) -> dict[str, Any]:
    secure_data_dir(out)
    url = settings.database_url
    # A copy of every resident's data: audited (before the copy, so the backup holds its own entry and its row
    # counts match the manifest's).
    _audit_backup(url, out, "backup.created", {"dir": str(out), "telemetry": influx})
    if url.startswith("sqlite"):
        copy = out / "store.sqlite"
        _sqlite_copy(_sqlite_path(url), copy, standalone=True)
        counts, schema = sqlite_copy_counts(copy)  # the copy's: the services write on
    else:
        copy = out / "store.pgdump"
        counts, schema = _pg_dump_counted(url, copy)
    progress(f"store copied: {sum(counts.values())} rows, {_size(copy)} / 数据库已备份")
    if influx:
        progress(
            f"telemetry: influxd backup of {settings.influx_db!r} (minutes for a large district) / 正在备份遥测数据"
        )
        _run(["influxd", "backup", "-portable", "-database", settings.influx_db, "-host", settings.influx_backup_host,
              str(out / "influx")], what="influxd backup")  # fmt: skip
        progress(f"telemetry copied: {_size(out / 'influx')} / 遥测数据已备份")
    snapshots = settings.data_dir / "detect"
    if snapshots.is_dir():
        shutil.copytree(snapshots, out / "detect")
    letters = settings.data_dir / DEADLETTER_FILE
    if letters.is_file():
        _sqlite_copy(letters, out / DEADLETTER_FILE, standalone=True)
    tls = settings.backup_tls_dir
    tls_files: list[str] = []
    if tls is not None:
        try:
            shutil.copytree(tls, out / "tls")
        except OSError as exc:  # copytree's Error too: a file in it this user cannot read (e.g. a root-only ca.key)
            raise BackupError(f"cannot copy ELDERCARE_BACKUP_TLS_DIR {tls}: {exc}") from None
        tls_files = sorted(str(p.relative_to(out / "tls")) for p in (out / "tls").rglob("*") if p.is_file())
    if settings.policies_path is not None:  # read at start-up, so it exists (Settings checks it)
        shutil.copyfile(settings.policies_path, out / POLICIES_FILE)
    manifest = {
        "created_ms": int(time.time() * 1000),
        "database": masked_url(url),
        "influx_db": settings.influx_db if influx else None,
        "counts": counts,
        "schema": schema,
        "deadletter": letters.is_file(),
        "tls_files": tls_files,
        "policies": settings.policies_path is not None,
    }
    manifest[FILES_KEY] = sums = file_sums(out)  # what `eldercare verify-backup` and a restore check first
    progress(f"checksums of {len(sums)} files recorded / 已记录校验和")
    # Written last: a directory with a manifest is a complete backup.
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    secure_data_dir(out)
    return manifest


def prune(parent: Path, *, keep: int, written: Path) -> list[Path]:
    """Remove the backups in ``parent`` older than its newest ``keep`` (``written`` always stays); return them.

    Only directories eldercare wrote are considered (a readable ``manifest.json``), ordered by the manifest's
    ``created_ms``; anything else in ``parent`` is left alone.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1 (the backup just written)")
    found: list[tuple[int, Path]] = []
    for child in parent.iterdir():
        if child.is_dir() and not child.is_symlink() and child != written:
            try:
                found.append((int(_read_manifest(child)["created_ms"]), child))
            except (BackupError, KeyError, TypeError, ValueError):
                continue
    found.sort(reverse=True)
    removed = [path for _, path in found[keep - 1 :]]
    for path in removed:
        shutil.rmtree(path)
    return removed


def _read_manifest(src: Path) -> dict[str, Any]:
    try:
        return read_manifest(src)
    except ManifestError as exc:
        raise BackupError(str(exc)) from None


def _check_store(settings: Settings, src: Path) -> None:
    """The backup has the configured store's kind, the store answers, and no other client is connected to it."""
    url = settings.database_url
    wanted = "store.sqlite" if url.startswith("sqlite") else "store.pgdump"
    if not (src / wanted).is_file():
        raise BackupError(f"{src} has no {wanted}, but the configured store is {masked_url(url)}")
    if url.startswith("sqlite"):
        return
    others = _ping_store(url, sessions=True)
    if others:
        raise BackupError(
            f"other clients are connected to the store {masked_url(url)}: {', '.join(sorted(others))}; stop them"
            " first (`systemctl stop eldercare-console eldercare-backend` on every host) / 仍有进程连接数据库"
        )


def _ping_store(url: str, *, sessions: bool = False) -> set[str]:
    """Raise :class:`BackupError` unless the PostgreSQL store answers; with ``sessions``, its other clients."""
    store = AlertStore(url=url, migrate=False)
    try:
        ping(store.engine)
        return set(other_sessions(store.engine)) if sessions else set()
    except Exception as exc:  # the driver's error types stay inside the store package
        raise BackupError(f"the store {masked_url(url)} cannot be reached: {first_line(exc)}") from None
    finally:
        store.close()


async def _influx_db_exists(settings: Settings, db: str) -> bool:
    from ingest.errors import InfluxUnavailable, QueryError

    try:
        async with influx_client(settings, db=db, timeout_s=5.0) as client:
            return await client.database_exists()
    except (InfluxUnavailable, QueryError) as exc:
        raise BackupError(f"InfluxDB at {settings.influx_url} cannot be asked for its databases: {exc}") from None


async def _drop_influx_db(settings: Settings, db: str) -> None:

    async with influx_client(settings, db=db) as client:
        await client.drop_database()


def left_out(settings: Settings, src: Path) -> list[str]:
    """What a restore of ``src`` into ``settings`` did not put back and the operator must (one line each, zh/en).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     left_out(Settings(data_dir=Path(d), policies_path=None, backup_tls_dir=None), Path(d))
    []
    """
    notes = []
    if (src / "tls").is_dir() and settings.backup_tls_dir is None:
        notes.append(
            f"not restored: the broker's TLS files with the local CA's private key (ca.key) in {src / 'tls'}:"
            " ELDERCARE_BACKUP_TLS_DIR is not set. Set it and restore again, or install them by hand"
            " (docs/operations.md, step 5): a broker certificate from a new CA is rejected by every deployed gateway"
            " / 未恢复 TLS 文件与 CA 私钥（未设置 ELDERCARE_BACKUP_TLS_DIR），新 CA 签发的证书会被所有网关拒绝"
        )
    if (src / POLICIES_FILE).is_file():
        if settings.policies_path is None:
            notes.append(
                f"not restored: the escalation policies ({src / POLICIES_FILE}): ELDERCARE_POLICIES_PATH is not set,"
                " so this deployment escalates by the built-in defaults. Copy the file into place and set it"
                " / 未恢复升级策略（未设置 ELDERCARE_POLICIES_PATH），当前使用内置默认策略"
            )
        elif settings.policies_path.read_bytes() != (src / POLICIES_FILE).read_bytes():
            notes.append(
                f"the escalation policies in force ({settings.policies_path}) differ from the backup's"
                f" ({src / POLICIES_FILE}) / 当前升级策略与备份中的不同"
            )
    return notes


def restore(
    settings: Settings, src: Path, *, influx: bool = True, replace_telemetry: bool = False, progress: Progress = _quiet
) -> dict[str, Any]:
    """Restore a backup into the configured (stopped) deployment; returns the manifest.

    Every precondition is checked before anything changes: the backup is whole (``eldercare.backup_verify``: every
    file's checksum, the store copy's own check) and matches the store's kind,
    no eldercare service holds the data directory (its lock) and no other client is connected to a PostgreSQL
    store, the store answers, and the telemetry database does not exist, or ``replace_telemetry`` allows dropping
    it (through the HTTP API) first. A failed check raises :class:`BackupError` with nothing changed.
    """
    manifest = _read_manifest(src)
    checked = verify(src)
    if not checked.ok:
        raise BackupError(
            f"the backup in {src} is damaged: {'; '.join(checked.problems)}; nothing was changed (use another copy)"
            " / 备份已损坏，未做任何更改"
        )
    progress(f"backup checked: {checked.files} files match their checksums / 备份校验通过")
    secure_data_dir(settings.data_dir)
    try:
        with serve_lock(settings.data_dir, exclusive=True):
            return _restore(
                settings, src, manifest, influx=influx, replace_telemetry=replace_telemetry, progress=progress
            )
    except DataDirBusy as exc:
        raise BackupError(f"{exc}; nothing was changed") from None


def _restore(
    settings: Settings,
    src: Path,
    manifest: dict[str, Any],
    *,
    influx: bool,
    replace_telemetry: bool,
    progress: Progress,
) -> dict[str, Any]:
    _check_store(settings, src)
    telemetry = influx and bool(manifest.get("influx_db"))
    drop = False
    if telemetry:
        if not (src / "influx").is_dir():
            raise BackupError(f"{src} has no influx/ directory although its manifest names {manifest['influx_db']}")
        if shutil.which("influxd") is None:
            raise BackupError("influxd restore: the influxd command is missing; nothing was changed")
        if asyncio.run(_influx_db_exists(settings, settings.influx_db)):
            if not replace_telemetry:
                raise BackupError(
                    f"the InfluxDB database {settings.influx_db!r} already exists at {settings.influx_url} and"
                    " influxd cannot restore over it: if it holds only what this backup replaces, add"
                    " --replace-telemetry (it is dropped first), or --no-influx; nothing was changed"
                    f" / InfluxDB 数据库 {settings.influx_db} 已存在"
                )
            drop = True
    tls = settings.backup_tls_dir if (src / "tls").is_dir() else None
    if tls is not None:
        existing = next((p for p in (tls, *tls.parents) if p.exists()), None)
        if existing is None or not os.access(existing, os.W_OK | os.X_OK):
            raise BackupError(f"ELDERCARE_BACKUP_TLS_DIR {tls} cannot be written by this user; nothing was changed")
    # Every check passed: from here on the deployment changes.
    if drop:
        asyncio.run(_drop_influx_db(settings, settings.influx_db))
    url = settings.database_url
    if url.startswith("sqlite"):
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
            stale.unlink(missing_ok=True)
        _sqlite_copy(src / "store.sqlite", target)
        os.chmod(target, 0o600)
    else:
        emptied = AlertStore(url=url, migrate=False)
        try:
            emptied.clear_for_restore()  # the store becomes the backup's, newer tables included
        finally:
            emptied.close()
        pg_restore(url, src / "store.pgdump")
    progress("store restored / 数据库已恢复")
    if telemetry:
        progress(
            f"telemetry: influxd restore into {settings.influx_db!r} (minutes for a large district) / 正在恢复遥测数据"
        )
        _run(["influxd", "restore", "-portable", "-db", manifest["influx_db"], "-newdb", settings.influx_db,
              "-host", settings.influx_backup_host, str(src / "influx")], what="influxd restore")  # fmt: skip
        progress("telemetry restored / 遥测数据已恢复")
    if (src / "detect").is_dir():
        shutil.copytree(src / "detect", settings.data_dir / "detect", dirs_exist_ok=True)
    if (src / DEADLETTER_FILE).is_file():
        letters = settings.data_dir / DEADLETTER_FILE
        for stale in (letters, letters.with_name(letters.name + "-wal"), letters.with_name(letters.name + "-shm")):
            stale.unlink(missing_ok=True)
        _sqlite_copy(src / DEADLETTER_FILE, letters)
    secure_data_dir(settings.data_dir)
    if tls is not None:
        shutil.copytree(src / "tls", tls, dirs_exist_ok=True)
        secure_data_dir(tls)  # 0700 / 0600: install the broker's copies from here (docs/operations.md, step 5)
    return manifest
