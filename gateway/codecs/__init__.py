"""One pure decoder per device kind, registered in :data:`DECODERS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from gateway.codecs import call_button, door, gas, gateway_status, mattress, motion, smoke, wristband
from gateway.models import DeviceKind, Reading, Topic

Decoder = Callable[..., Reading]
"""``decode(topic, payload, *, received_ms, max_skew_ms) -> Reading``."""

DECODERS: Final[dict[DeviceKind, Decoder]] = {
    DeviceKind.MATTRESS: mattress.decode,
    DeviceKind.WRISTBAND: wristband.decode,
    DeviceKind.DOOR: door.decode,
    DeviceKind.SMOKE: smoke.decode,
    DeviceKind.GAS: gas.decode,
    DeviceKind.CALL_BUTTON: call_button.decode,
    DeviceKind.MOTION: motion.decode,
    DeviceKind.GATEWAY: gateway_status.decode,
}

__all__ = ["DECODERS", "Decoder", "Topic"]
