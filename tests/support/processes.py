"""Stopping the child processes tests start themselves (pipelines, backends, partition workers)."""

from __future__ import annotations

import os
import signal
import subprocess

from eldercare.servers.postgres import Postgres


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL and reap: no flush, no snapshot, no clean disconnect."""
    if proc is not None:
        proc.kill()
        proc.wait()


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """SIGTERM and wait for a clean exit; SIGKILL if it does not come within ``timeout``."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_process(proc)


def kill_postmaster(server: Postgres) -> None:
    """SIGKILL the postmaster itself (not the ``runuser`` wrapper of a root test run), then reap the wrapper."""
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    if server.proc is not None and server.proc.pid != pid:
        server.proc.wait(30)  # the wrapper reaps the postmaster and exits with its status
    server.stop()
