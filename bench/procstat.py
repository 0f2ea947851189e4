"""CPU time of another process from ``/proc/<pid>/stat`` (Linux), for the benchmarks that measure servers."""

from __future__ import annotations

import os
from pathlib import Path


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far; raises ``OSError`` if it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
