"""Debian PostgreSQL as a child process: a throw-away cluster on a free loopback port (tests, local stack).

initdb and postgres refuse to run as root, so when the launcher is root the cluster is owned by and run
as the ``postgres`` system user (``runuser``), in a private directory under the system temp dir that
this user can reach. The unix socket lives in the cluster directory; TCP listens on 127.0.0.1 only,
with trust authentication, which is acceptable only because nothing else can reach it.
Production deployments use a managed PostgreSQL and ``ELDERCARE_DATABASE_URL``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import psycopg
import psycopg.sql

from eldercare.servers._child import ChildServer, ServerError, ensure_package, free_port

_SERVICE_USER = "postgres"


def find_bin_dir() -> Path:
    """Directory of the newest installed PostgreSQL server binaries (installing Debian's package if needed)."""

    def newest() -> Path | None:
        root = Path("/usr/lib/postgresql")
        versions = sorted(
            (p for p in root.glob("*/bin") if (p / "postgres").is_file()),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        )
        return versions[-1] if versions else None

    found = newest()
    if found is None:
        ensure_package("pg_ctlcluster", "postgresql")
        found = newest()
    if found is None:
        raise ServerError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return found


def _ensure_service_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _SERVICE_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(_SERVICE_USER)


class Postgres(ChildServer):
    """A PostgreSQL server on 127.0.0.1:``port`` with a fresh cluster; ``url(db)`` gives SQLAlchemy URLs."""

    name = "postgres"

    def __init__(self, *, data_dir: Path, port: int = 0, superuser: str = "postgres") -> None:
        super().__init__(data_dir=data_dir)
        self.port = port or free_port()
        self.superuser = superuser
        self.bin_dir = find_bin_dir()
        self._as_root = os.geteuid() == 0
        self._cluster: Path | None = None

    @property
    def cluster_dir(self) -> Path:
        """The cluster (PGDATA) directory; also holds the unix socket."""
        if self._cluster is None:
            if self._as_root:
                # pytest's and most private temp dirs are 0700 root: the service user could not enter them.
                user = _ensure_service_user()
                self._cluster = Path(tempfile.mkdtemp(prefix="eldercare-pg-"))
                os.chown(self._cluster, user.pw_uid, user.pw_gid)
            else:
                self._cluster = self.data_dir / "pgdata"
                self._cluster.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._cluster

    @property
    def pgdata(self) -> Path:
        """PGDATA inside the cluster directory."""
        return self.cluster_dir / "data"

    def _as_service(self, argv: Sequence[str]) -> list[str]:
        return ["runuser", "-u", _SERVICE_USER, "--", *argv] if self._as_root else list(argv)

    def prepare(self) -> None:
        """Run initdb once (trust auth, UTF-8, C locale)."""
        if (self.pgdata / "PG_VERSION").is_file():
            return
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = subprocess.run(self._as_service(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {result.stderr.strip()[-800:]}")

    def command(self) -> Sequence[str]:
        """Postgres in the foreground; durability settings relaxed since the cluster is throw-away."""
        return self._as_service(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.pgdata),
                "-p",
                str(self.port),
                "-k",
                str(self.cluster_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=64MB",
            ]
        )

    def ready(self) -> bool:
        """Ready once pg_isready says the server accepts connections."""
        result = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False
        )
        return result.returncode == 0

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) of a database on this server."""
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def _conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.superuser} dbname={database}"

    def create_database(self, name: str) -> str:
        """Create a database (name: letters, digits, underscore) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"invalid database name {name!r}")
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            # The name was validated above; identifiers cannot be bound parameters.
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return self.url(name)

    def create_password_database(self, name: str, *, password: str) -> str:
        """A database owned by a new role ``name`` that must log in with ``password`` over TCP; its URL.

        The rest of the cluster keeps trust authentication; this role alone is checked (scram-sha-256), so a
        client that does not pass the password is refused (tests of how tools receive it).
        """
        if not name.replace("_", "").isalnum():
            raise ValueError(f"invalid role name {name!r}")
        hba = self.pgdata / "pg_hba.conf"
        rule = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # the first matching line wins
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(name), psycopg.sql.Literal(password)
                )
            )
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    psycopg.sql.Identifier(name), psycopg.sql.Identifier(name)
                )
            )
            conn.execute("SELECT pg_reload_conf()")
        return f"postgresql+psycopg://{name}:{password}@127.0.0.1:{self.port}/{name}"

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its clients."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"invalid database name {name!r}")
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
            )

    def remove(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        if self._cluster is not None and self._as_root:
            shutil.rmtree(self._cluster, ignore_errors=True)
        self._cluster = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()
