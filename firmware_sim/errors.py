"""Typed errors of the device simulator."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error the simulator raises."""


class PublishError(SimulatorError):
    """Raised when a simulated gateway cannot connect to the broker or publish.

    Attributes:
        site: the home whose gateway failed.
        reason: human-readable explanation (English), safe to log.
    """

    def __init__(self, *, site: str, reason: str) -> None:
        super().__init__(f"gateway of {site}: {reason}")
        self.site = site
        self.reason = reason


class ScenarioError(SimulatorError):
    """Raised when simulation parameters are invalid (e.g. zero homes, unknown scenario mix).

    Attributes:
        parameter: the offending parameter name.
        reason: human-readable explanation (English).
    """

    def __init__(self, *, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason
