"""Typed errors of the detection core; each carries the data a caller needs."""

from __future__ import annotations


class DetectionError(Exception):
    """Base class of every error the detection core raises."""


class RegistryError(DetectionError):
    """Raised when a registry file or mapping does not match docs/registry.md.

    Attributes:
        reason: a human-readable explanation (English).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid registry: {reason}")
        self.reason = reason


class SnapshotError(DetectionError):
    """Raised when an engine snapshot cannot be decoded or belongs to another format version.

    Attributes:
        reason: a human-readable explanation (English).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid engine snapshot: {reason}")
        self.reason = reason


class RecordingError(DetectionError):
    """Raised when a recording line is not ``{"t": int, "topic": str, "payload": str}``.

    Attributes:
        path: the recording file.
        line: 1-based line number.
        reason: a human-readable explanation (English).
    """

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason
