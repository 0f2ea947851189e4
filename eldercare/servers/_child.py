"""Child-process lifecycle shared by every server launcher: install, start, wait ready, stop."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

_LOG = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """Raised when a server cannot be installed, started or reached."""


def free_port() -> int:
    """Ask the kernel for a free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_package(binary: str, package: str) -> str:
    """Return the path of ``binary``, installing Debian ``package`` with apt-get if it is missing."""
    found = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise ServerError(f"{binary} not found; install it with: sudo apt-get install -y {package}")
    _LOG.warning("installing Debian package %s (needed for %s)", package, binary)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, capture_output=True, text=True)
    found = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if result.returncode != 0 or not found:
        raise ServerError(f"apt-get install {package} failed: {result.stderr.strip()[-500:]}")
    return found


MAX_OPEN_FILES = 1 << 20
"""Servers get their soft open-file limit raised to the hard limit (capped here): a broker with 10,000 homes
connected needs a socket each, and the usual soft default of 1024 would refuse the rest."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGTERM to the child when the
    # parent dies, so even a SIGKILLed launcher leaves no orphan server behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgrp()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``check`` until it is true; fail early with the server's log if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise ServerError(f"{what} not ready after {timeout:.0f} s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ChildServer:
    """A server process owned by this process: started on enter, stopped (TERM, then KILL) on exit."""

    name = "server"

    def __init__(self, *, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the server's stdout/stderr go."""
        return self.data_dir / f"{self.name}.log"

    def command(self) -> Sequence[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration and data directories before the first start."""

    def ready(self) -> bool:
        """True once the server accepts clients."""
        raise NotImplementedError

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the process and block until it is ready."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv built from our own config
            list(self.command()), stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        try:
            wait_until(self.ready, timeout=timeout, what=self.name, proc=self.proc)
        except ServerError as exc:
            self.stop()
            raise ServerError(f"{exc}; log tail:\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the server log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, *, timeout: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the process: ``sig`` first, SIGKILL if it does not exit within ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Crash the server with SIGKILL (for failure tests)."""
        self.stop(sig=signal.SIGKILL, timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
