"""Is a backup directory whole? Checksums of every file, and the store copy's own integrity check.

``eldercare backup`` records the size and SHA-256 of every file it wrote in ``manifest.json`` (``files``).
:func:`verify` reads them back, and checks what a checksum cannot vouch for by itself: a SQLite copy passes
``PRAGMA integrity_check``, a PostgreSQL dump has a table of contents ``pg_restore --list`` can read. ``eldercare
verify-backup`` runs it on any host (an off-site copy included: no deployment settings needed), and
``eldercare restore`` runs it before it changes anything: a damaged backup used to be found only once the live store
had been deleted or emptied for it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FILES_KEY = "files"
"""The manifest's map of every other file in the backup (relative POSIX path) to its ``bytes`` and ``sha256``."""
SQLITE_COPIES = ("store.sqlite", "deadletter.sqlite3")
PG_DUMP = "store.pgdump"


def file_sums(root: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every regular file under ``root`` but the manifest, by relative POSIX path."""
    sums: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        sums[rel] = {"bytes": path.stat().st_size, "sha256": digest}
    return sums


class ManifestError(ValueError):
    """The directory has no readable manifest: not a backup written by ``eldercare backup``."""


def read_manifest(src: Path) -> dict[str, Any]:
    """The backup's ``manifest.json``; :class:`ManifestError` when it is missing or not a JSON object."""
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{src} is not a backup written by eldercare backup ({MANIFEST}: {exc})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{src} is not a backup written by eldercare backup ({MANIFEST}: not an object)")
    return manifest


@dataclass
class Verified:
    """What :func:`verify` found: ``problems`` (one line each) is empty for a whole backup."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    """Files whose checksum matched."""
    checksums: bool = True
    """False for a backup written before checksums were recorded (only the copies' own checks ran)."""

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def verify(src: Path) -> Verified:
    """Check the backup in ``src`` without changing it (see the module's text)."""
    found = Verified()
    try:
        manifest = read_manifest(src)
    except ManifestError as exc:
        found.problems.append(str(exc))
        return found
    recorded = manifest.get(FILES_KEY)
    if not isinstance(recorded, dict):
        found.checksums = False
    else:
        present = file_sums(src)
        for rel, want in sorted(recorded.items()):
            have = present.get(rel)
            if have is None:
                found.problems.append(f"{rel} is missing / 文件缺失")
            elif have != want:
                found.problems.append(
                    f"{rel} has changed since the backup ({have['bytes']} bytes, {want['bytes']} written; checksum"
                    " differs) / 文件已损坏"
                )
            else:
                found.files += 1
        for rel in sorted(set(present) - set(recorded)):
            found.problems.append(f"{rel} was not written by the backup / 多余的文件")
    for name in SQLITE_COPIES:
        if (src / name).is_file() and (trouble := _sqlite_trouble(src / name)) is not None:
            found.problems.append(f"{name}: {trouble}")
    if (src / PG_DUMP).is_file() and (trouble := _pg_dump_trouble(src / PG_DUMP)) is not None:
        found.problems.append(f"{PG_DUMP}: {trouble}")
    return found


def _sqlite_trouble(path: Path) -> str | None:
    """None when SQLite's integrity check passes on the copy (opened read-only, nothing written next to it)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        conn.close()
    except sqlite3.DatabaseError as exc:
        return f"not a readable SQLite database ({exc})"
    return None if rows == ["ok"] else f"integrity check failed: {'; '.join(map(str, rows[:3]))}"


def _pg_dump_trouble(path: Path) -> str | None:
    """None when ``pg_restore --list`` reads the dump's table of contents (skipped where it is not installed)."""
    binary = shutil.which("pg_restore")
    if binary is None:
        return None
    done = subprocess.run([binary, "--list", str(path)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        return f"pg_restore cannot read it: {(done.stderr or done.stdout).strip()[-300:]}"
    return None
