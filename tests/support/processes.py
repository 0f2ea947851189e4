"""Stopping the child processes tests start themselves (pipelines, backends, partition workers)."""

from __future__ import annotations

import subprocess


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
