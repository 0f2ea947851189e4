"""Process setup shared by every entry point: logging, and the private umask.

The entry points: the CLI, ``python -m eldercare.pipeline`` and ``python -m eldercare.partition_worker``.

One line per InfluxDB request or notification (httpx, apprise) drowns what operators need to see; the partition
worker and the pipeline module used to log every write at INFO because they set logging up on their own.
"""

from __future__ import annotations

import logging
import os
from typing import Final

FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY: Final = ("httpx", "apprise", "alembic.runtime.plugins")
"""Loggers kept at WARNING unless verbose: per-request lines, and alembic announcing its plugins on every start
(the migrations it runs stay)."""


def configure_logging(*, verbose: bool = False) -> None:
    """INFO (DEBUG if ``verbose``) to stderr in one format, the per-request loggers quiet."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=FORMAT)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def private_umask() -> None:
    """Files this process creates from now on are private (umask 077): SQLite, spool, snapshots, backups.

    Called by the entry points (every ``eldercare`` command, ``python -m eldercare.pipeline`` and
    ``python -m eldercare.partition_worker``), not by library code.
    """
    os.umask(0o077)
