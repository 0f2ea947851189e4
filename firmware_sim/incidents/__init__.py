"""Incidents the simulator plans into a home's life, one module per family (like ``detection/detectors/``).

Each kind is a :class:`~firmware_sim.incidents.base.Kind`: the moment it can start and the function that plans it.
Kinds that share a moment share a module where they also share code (calls, falls, the kitchen, the night, vital
signs, device faults, the gateway). Weights say how often each kind is drawn.
"""

from __future__ import annotations

from typing import Final

from firmware_sim.incidents import absence, calls, devices, falls, gateway, kitchen, night, not_up, vitals
from firmware_sim.incidents.base import Kind, any_time, at_night, awake_at_home, cooking

BEHAVIOUR: Final[dict[str, Kind]] = {
    "sos_press": Kind(awake_at_home, calls.sos_press),
    "call_button_press": Kind(awake_at_home, calls.call_button_press),
    "accidental_press": Kind(awake_at_home, calls.accidental_press),
    "fire": Kind(cooking, kitchen.fire),
    "burnt_cooking": Kind(cooking, kitchen.burnt_cooking),
    "fall_detected": Kind(awake_at_home, falls.fall_detected),
    "long_lie": Kind(awake_at_home, falls.long_lie),
    "night_bed_exit": Kind(at_night, night.night_bed_exit),
    "not_up": Kind(at_night, not_up.not_up),
    "wandering": Kind(at_night, night.wandering),
    "long_absence": Kind(at_night, absence.long_absence),
    "bradycardia": Kind(at_night, vitals.bradycardia),
    "tachycardia": Kind(awake_at_home, vitals.tachycardia),
    "apnea": Kind(at_night, vitals.apnea),
    "vitals_trend": Kind(at_night, vitals.vitals_trend),
}
"""Person incidents. The night moment is drawn for every kind of the night group, used or not: seeds stay stable."""

DEVICE: Final[dict[str, Kind]] = {
    "device_offline": Kind(any_time, devices.device_offline),
    "low_battery": Kind(any_time, devices.low_battery),
    "tamper": Kind(any_time, devices.tamper),
    "gateway_offline": Kind(any_time, gateway.gateway_offline),
    "gateway_reboot": Kind(any_time, gateway.gateway_reboot),
    "smoke_fault": Kind(any_time, devices.smoke_fault),
    "not_worn": Kind(any_time, devices.not_worn),
    "clock_skew": Kind(any_time, devices.clock_skew),
}
"""Device and gateway incidents."""
