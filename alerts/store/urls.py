"""Database URLs as the store's tools need them (SQLAlchemy parses them; nothing outside the store imports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

CONNECT_TIMEOUT_S: Final = 10
"""PostgreSQL: how long opening a connection may take (libpq's ``connect_timeout``) unless the URL sets its own.
Without it a server that accepts the connection and never answers (hung, or behind a half-open firewall) held every
command, request and worker for good (tests/store/test_store_unreachable.py)."""


def pg_connect_args(database_url: str) -> dict[str, str | int]:
    """The driver's defaults for a PostgreSQL store, where the URL's query does not set them.

    Named in ``pg_stat_activity`` (so ``eldercare restore`` can say which process still holds the store), and the
    connect timeout.

    >>> pg_connect_args("postgresql+psycopg://u@db/eldercare")
    {'application_name': 'eldercare', 'connect_timeout': 10}
    >>> pg_connect_args("postgresql+psycopg://u@db/eldercare?connect_timeout=3&application_name=x")
    {}
    """
    query = make_url(database_url).query
    defaults: dict[str, str | int] = {"application_name": "eldercare", "connect_timeout": CONNECT_TIMEOUT_S}
    return {k: v for k, v in defaults.items() if k not in query}


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as libpq (``pg_dump``, ``pg_restore``) understands it: no ``+driver``.

    >>> libpq_url("postgresql+psycopg://u:p@db:5432/eldercare")
    'postgresql://u:p@db:5432/eldercare'
    """
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def libpq_url_without_password(database_url: str) -> tuple[str, str | None]:
    """The libpq URL without its password, and the password (for ``PGPASSWORD``): ``ps`` shows arguments.

    >>> libpq_url_without_password("postgresql+psycopg://u:p%40ss@db:5432/eldercare")
    ('postgresql://u@db:5432/eldercare', 'p@ss')
    >>> libpq_url_without_password("postgresql+psycopg://eldercare@/eldercare?host=/var/run/postgresql")
    ('postgresql://eldercare@/eldercare?host=%2Fvar%2Frun%2Fpostgresql', None)
    """
    url = make_url(database_url)
    password = url.password
    bare = url._replace(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return bare, (str(password) if password is not None else None)


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a SQLite URL, or None if it names none.

    >>> sqlite_file("sqlite:////var/lib/eldercare/eldercare.db")
    PosixPath('/var/lib/eldercare/eldercare.db')
    """
    database = make_url(database_url).database
    return Path(database) if database else None


def driver_name(database_url: str) -> str:
    """The URL's scheme with its driver, e.g. ``postgresql+psycopg``."""
    return str(make_url(database_url).drivername)


def masked_url(database_url: str) -> str:
    """The URL with its password replaced by ``***``, for manifests and logs.

    >>> masked_url("postgresql://u:secret@db/eldercare"), masked_url("not a url")
    ('postgresql://u:***@db/eldercare', '(unparsable URL)')
    """
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"
