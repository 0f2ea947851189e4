"""``eldercare certs``: a local certificate authority and server (and gateway client) certificates, for TLS.

For development, tests and small deployments without a public CA: the CA signs the broker's (and the
console's) server certificate for the given host names and addresses; home gateways trust ``ca.crt``.
Private keys are written 0600. Uses the ``openssl`` command line tool (Debian: package ``openssl``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509


class CertError(RuntimeError):
    """openssl failed or is missing; the message carries its output."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the CA and one certificate with its key are."""

    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise CertError("the openssl command is missing (apt-get install openssl)")
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise CertError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")


def _private(path: Path) -> None:
    os.chmod(path, 0o600)


def _san(hosts: Sequence[str]) -> str:
    entries = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            entries.append(f"DNS:{host}")
        else:
            entries.append(f"IP:{host}")
    return ",".join(entries)


def make_ca(out: Path, *, days: int = 3650, name: str = "eldercare local CA") -> TlsFiles:
    """A new CA (``ca.crt``, ``ca.key``) in ``out``, unless one is there already (then it is reused)."""
    out.mkdir(parents=True, exist_ok=True)
    ca, key = out / "ca.crt", out / "ca.key"
    if not (ca.exists() and key.exists()):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.name, cwd=out)
        _private(key)
        _openssl(
            "req", "-x509", "-new", "-key", key.name, "-sha256", "-days", str(days), "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", ca.name, cwd=out,
        )  # fmt: skip
    return TlsFiles(ca=ca, cert=ca, key=key)


def issue(
    out: Path, stem: str, *, hosts: Sequence[str] = (), client: bool = False, peer: bool = False, days: int = 825
) -> TlsFiles:
    """A certificate signed by the CA in ``out``: a server's for ``hosts``, or a client's (CN ``stem``).

    ``peer``: a server that also dials its peers with it (NATS routes verify both ends), so it may authenticate
    as a client too.
    """
    ca = make_ca(out)
    key, csr, cert = out / f"{stem}.key", out / f"{stem}.csr", out / f"{stem}.crt"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.name, cwd=out)
    _private(key)
    _openssl("req", "-new", "-key", key.name, "-subj", f"/CN={stem}", "-out", csr.name, cwd=out)
    ext = out / f"{stem}.ext"
    usage = "clientAuth" if client else "serverAuth,clientAuth" if peer else "serverAuth"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", f"extendedKeyUsage={usage}"]
    if hosts:
        lines.append(f"subjectAltName={_san(hosts)}")
    ext.write_text("\n".join(lines) + "\n")
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", ca.cert.name, "-CAkey", ca.key.name, "-CAcreateserial",
        "-days", str(days), "-sha256", "-extfile", ext.name, "-out", cert.name, cwd=out,
    )  # fmt: skip
    csr.unlink()
    ext.unlink()
    return TlsFiles(ca=ca.cert, cert=cert, key=key)


def server_certificate(out: Path, *, hosts: Sequence[str] = ("localhost", "127.0.0.1"), peer: bool = False) -> TlsFiles:
    """The broker's / console's certificate (``server.crt``, ``server.key``) for ``hosts``.

    ``peer``: for a NATS node, whose routes to the other nodes present the same certificate as a client.
    """
    return issue(out, "server", hosts=hosts, peer=peer)


EXPIRY_WARN_DAYS = 30
"""``broker check`` and the console warn when a certificate has fewer days left than this."""


def expiry(paths: Sequence[Path]) -> dict[str, float]:
    """When each readable PEM certificate among ``paths`` stops being valid (Unix time), by file name.

    Files that are missing, unreadable or not a certificate are left out: this feeds ``/metrics``, which must not
    fail a scrape over a file an operator is replacing.
    """
    found: dict[str, float] = {}
    for path in paths:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        found[str(path)] = cert.not_valid_after_utc.timestamp()
    return found


@dataclass(frozen=True, slots=True)
class Validity:
    """How long one certificate stays valid, at the time it was read."""

    path: str
    until_s: float
    """When it stops being valid (Unix time)."""
    days_left: float
    """Negative once it has expired."""

    @property
    def expired(self) -> bool:
        """Past its last second: every client refuses it."""
        return self.days_left < 0

    @property
    def expiring(self) -> bool:
        """Still valid, but for fewer than :data:`EXPIRY_WARN_DAYS` days: time to renew it."""
        return 0 <= self.days_left < EXPIRY_WARN_DAYS

    @property
    def date(self) -> str:
        """The last day (UTC), ``YYYY-MM-DD``."""
        return dt.datetime.fromtimestamp(self.until_s, dt.UTC).strftime("%Y-%m-%d")


def validity(paths: Sequence[Path], *, now_s: float | None = None) -> list[Validity]:
    """:func:`expiry` of ``paths`` (in their order) with the days left at ``now_s`` (default: now).

    The one rule of "expired" and "renew it" that ``eldercare broker check`` and the console's notice share.
    """
    now = time.time() if now_s is None else now_s
    return [Validity(path, end, (end - now) / 86400) for path, end in expiry(paths).items()]
