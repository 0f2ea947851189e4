"""Events the hazard detectors (smoke, gas) share: test, silence, clear, fault. Each kind adds its own ``alarm``."""

from __future__ import annotations

from gateway.codecs._base import Envelope


class Test(Envelope, kw_only=True, tag_field="event", tag="test"):
    """Test button pressed (proves the device works; not an alarm)."""


class Silence(Envelope, kw_only=True, tag_field="event", tag="silence"):
    """Alarm silenced locally."""


class Clear(Envelope, kw_only=True, tag_field="event", tag="clear"):
    """Hazard cleared, alarm stopped."""


class Fault(Envelope, kw_only=True, tag_field="event", tag="fault"):
    """Sensor fault (for gas: an aged or poisoned sensor element), with a device-specific code."""

    code: str | None = None
