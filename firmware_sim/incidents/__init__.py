"""Incidents the simulator plans into a home's life, one module per family (like ``detection/detectors/``).

Each kind is a :class:`~firmware_sim.incidents.base.Kind`: the moment it can start and the function that plans it.
Kinds that share a moment share a module where they also share code (calls, falls, the kitchen, the night, vital
signs, device faults, the gateway). The order of the maps and the weights are part of the seed.
"""

from __future__ import annotations

from typing import Final

from firmware_sim.incidents import absence, calls, device_faults, falls, gateway, kitchen, night, not_up, vitals
from firmware_sim.incidents.base import Kind, any_time, at_night, awake_at_home, cooking

BEHAVIOUR: Final[dict[str, Kind]] = {
    "sos_press": Kind(awake_at_home, calls.sos_press, weight=1.0),
    "call_button_press": Kind(awake_at_home, calls.call_button_press, weight=1.0),
    "accidental_press": Kind(awake_at_home, calls.accidental_press, weight=1.0),
    "fire": Kind(cooking, kitchen.fire, weight=0.4),
    "burnt_cooking": Kind(cooking, kitchen.burnt_cooking, weight=1.0),
    "fall_detected": Kind(awake_at_home, falls.fall_detected, weight=1.0),
    "long_lie": Kind(awake_at_home, falls.long_lie, weight=1.0),
    "night_bed_exit": Kind(at_night, night.night_bed_exit, weight=1.0),
    "not_up": Kind(at_night, not_up.not_up, weight=1.0),
    "wandering": Kind(at_night, night.wandering, weight=1.5),
    "long_absence": Kind(at_night, absence.long_absence, weight=0.7),
    "bradycardia": Kind(at_night, vitals.bradycardia, weight=0.8),
    "tachycardia": Kind(awake_at_home, vitals.tachycardia, weight=0.8),
    "apnea": Kind(at_night, vitals.apnea, weight=0.8),
    "vitals_trend": Kind(at_night, vitals.vitals_trend, weight=0.4),
}
"""Person incidents, in draw order, with their relative weights (filtered by what the profile allows).

The night moment is drawn for every kind of the night group, used or not: seeds stay stable."""

DEVICE: Final[dict[str, Kind]] = {
    "device_offline": Kind(any_time, device_faults.device_offline, weight=1.0),
    "low_battery": Kind(any_time, device_faults.low_battery, weight=1.0),
    "tamper": Kind(any_time, device_faults.tamper, weight=0.6),
    "gateway_offline": Kind(any_time, gateway.gateway_offline, weight=1.0),
    "gateway_reboot": Kind(any_time, gateway.gateway_reboot, weight=1.0),
    "smoke_fault": Kind(any_time, device_faults.smoke_fault, weight=0.5),
    "not_worn": Kind(any_time, device_faults.not_worn, weight=0.8),
    "clock_skew": Kind(any_time, device_faults.clock_skew, weight=0.6),
}
"""Device and gateway incidents, in draw order, with their relative weights."""
