"""Recorded Zigbee2MQTT payload shapes (verbatim from the issues cited in docs/devices.md) and a home using them."""

from __future__ import annotations

import json
from typing import Any, Final

from gateway.models import DeviceKind

DOOR: Final = "0x00158d0004470a44"  # Aqara MCCGQ11LM (zigbee2mqtt#14512)
TUYA_DOOR: Final = "0xa4c138d2f1e2b3c4"  # Tuya TS0203 "door-sensor" (zigbee2mqtt#18806)
PIR: Final = "0x00158d0001e50d78"  # Aqara RTCGQ11LM (zigbee2mqtt#2274)
SMOKE: Final = "0x00158d0001a2b3c4"  # Xiaomi JTYJ-GD-01LM/BW
GAS: Final = "0x00158d0001d4e5f6"  # Xiaomi JTQJ-BF-01LM/BW
SOS: Final = "0x847127fffe0542eb"  # Tuya TS0215A_sos (zigbee-herdsman-converters#2797)
SOS2: Final = "0xa4c13899607febd1"  # Tuya TS0601_sos, Z2M 2.x (zigbee2mqtt#31727)
HEIMAN: Final = "0x000d6f0011223344"  # Heiman HS1EB
LATCHED: Final = "0x00124b0012345678"  # Feibit SEB01ZB (latched `sos`)
UNKNOWN: Final = "0x0017880100aabbcc"  # a model without a mapping entry
TUYA_SMOKE: Final = "0xa4c1380011223344"  # Tuya TS0601_smoke_1 (no battery percentage)
HEIMAN_GAS: Final = "0x000d6f0055667788"  # Heiman HS1CG-E (gas, battery_low, tamper only)
HEIMAN_REMOTE: Final = "0x000d6f0099aabbcc"  # Heiman HS1RC-N security remote with an SOS key
XIAOMI_PIR: Final = "0x00158d00011a2b3c"  # Xiaomi RTCGQ01LM (Z2M docs example)
HEIMAN_PIR: Final = "0x000d6f00aabbccdd"  # Heiman PIR_TPV12
MMWAVE: Final = "0xa4c1382a6b329e9d"  # Tuya ZY-M100-S_1 (Andrik45719/ZY-M100#1)
FP1: Final = "0x54ef441000123456"  # Aqara RTCZCGQ11LM FP1 (zigbee2mqtt#11935)
FALL_RADAR: Final = "0x000d6f00fa11fa11"  # Heiman HS2FD-EF1-3.0 fall radar (zigbee2mqtt#27975)
TUYA_FALL_RADAR: Final = "0xa4c138fa11000001"  # Tuya MIR-HE200-TY presence radar with fall function
BED_STRAP: Final = "0xa4c138bed0000001"  # Tuya TS0601_bed_presence_sensor (pressure strap)

KINDS: Final = {
    DOOR: DeviceKind.DOOR,
    TUYA_DOOR: DeviceKind.DOOR,
    PIR: DeviceKind.MOTION,
    SMOKE: DeviceKind.SMOKE,
    GAS: DeviceKind.GAS,
    SOS: DeviceKind.CALL_BUTTON,
    SOS2: DeviceKind.CALL_BUTTON,
    HEIMAN: DeviceKind.CALL_BUTTON,
    LATCHED: DeviceKind.CALL_BUTTON,
    UNKNOWN: DeviceKind.DOOR,
    TUYA_SMOKE: DeviceKind.SMOKE,
    HEIMAN_GAS: DeviceKind.GAS,
    HEIMAN_REMOTE: DeviceKind.CALL_BUTTON,
    XIAOMI_PIR: DeviceKind.MOTION,
    HEIMAN_PIR: DeviceKind.MOTION,
    MMWAVE: DeviceKind.MOTION,
    FP1: DeviceKind.MOTION,
    FALL_RADAR: DeviceKind.MOTION,
    TUYA_FALL_RADAR: DeviceKind.MOTION,
    BED_STRAP: DeviceKind.MATTRESS,
}
"""Registry entries of a Z2M home: device id = IEEE address."""

_NAMES: Final = {
    DOOR: ("porte", "MCCGQ11LM", "Xiaomi"),
    TUYA_DOOR: ("door-sensor", "TS0203", "Tuya"),
    PIR: ("0x00158d0001e50d78", "RTCGQ11LM", "Xiaomi"),
    SMOKE: ("sens_smoke1", "JTYJ-GD-01LM/BW", "Xiaomi"),
    GAS: ("kitchen/gas", "JTQJ-BF-01LM/BW", "Xiaomi"),
    SOS: ("0x847127fffe0542eb", "TS0215A_sos", "Tuya"),
    SOS2: ("0xa4c13899607febd1", "TS0601_sos", "Tuya"),
    HEIMAN: ("bedroom button", "HS1EB", "Heiman"),
    LATCHED: ("pendant", "SEB01ZB", "Feibit"),
    UNKNOWN: ("hue", "9290012573A", "Philips"),
    TUYA_SMOKE: ("hall smoke", "TS0601_smoke_1", "Tuya"),
    HEIMAN_GAS: ("kitchen gas", "HS1CG-E", "Heiman"),
    HEIMAN_REMOTE: ("remote", "HS1RC-N", "Heiman"),
    XIAOMI_PIR: ("hall pir", "RTCGQ01LM", "Xiaomi"),
    HEIMAN_PIR: ("bath pir", "PIR_TPV12", "Heiman"),
    MMWAVE: ("0xa4c1382a6b329e9d", "ZY-M100-S_1", "Tuya"),
    FP1: ("living fp1", "RTCZCGQ11LM", "Aqara"),
    FALL_RADAR: ("HS2FD-ZB", "HS2FD-EF1-3.0", "Heiman"),
    TUYA_FALL_RADAR: ("bathroom radar", "MIR-HE200-TY", "Tuya"),
    BED_STRAP: ("bed strap", "TS0601_bed_presence_sensor", "Tuya"),
}


def bridge_devices(renames: dict[str, str] | None = None) -> bytes:
    """A retained ``bridge/devices`` (Z2M 2.x shape, exposes trimmed) with the coordinator first."""
    renames = renames or {}
    out: list[dict[str, Any]] = [
        {
            "ieee_address": "0x00124b0018e2a3b4",
            "friendly_name": "Coordinator",
            "type": "Coordinator",
            "definition": None,
            "supported": True,
            "interview_completed": True,
        },
    ]
    for ieee, (name, model, vendor) in _NAMES.items():
        out.append(
            {
                "ieee_address": ieee,
                "friendly_name": renames.get(ieee, name),
                "type": "EndDevice",
                "supported": True,
                "definition": {"model": model, "vendor": vendor, "description": "", "exposes": []},
                "power_source": "Battery",
            }
        )
    return json.dumps(out).encode()


def name_of(ieee: str) -> str:
    """The friendly name of a fixture device."""
    return _NAMES[ieee][0]


# Verbatim payloads (research note §1.3).
TUYA_DOOR_OPEN: Final = (
    b'{"battery":100,"battery_low":false,"contact":false,"last_seen":"2023-08-31T23:31:39.771Z",'
    b'"linkquality":153,"tamper":false,"voltage":3000}'
)
TUYA_DOOR_CLOSED: Final = (
    b'{"battery":100,"battery_low":false,"contact":true,"last_seen":"2023-08-31T23:31:45.891Z",'
    b'"linkquality":153,"tamper":false,"voltage":3000}'
)
SMOKE_ALARM: Final = (
    b'{"battery":100,"voltage":3195,"linkquality":57,"last_seen":1573393389829,"smoke":true,"sensitivity":"high"}'
)
SMOKE_QUIET: Final = b'{"battery":100,"voltage":3195,"linkquality":57,"smoke":false,"test":false,"sensitivity":"high"}'
SMOKE_TEST: Final = b'{"battery":100,"voltage":3195,"linkquality":57,"smoke":false,"test":true,"sensitivity":"high"}'
PIR_IDLE: Final = (
    b'{"battery":100,"voltage":3175,"illuminance":0,"linkquality":18,"occupancy":false,"illuminance_lux":0}'
)
PIR_MOTION: Final = (
    b'{"battery":100,"voltage":3175,"illuminance":0,"linkquality":18,"occupancy":true,"illuminance_lux":0}'
)
SOS_EMERGENCY: Final = b'{"action":"emergency","battery":null,"linkquality":90}'
SOS_EMPTY: Final = b'{"action":"","battery":null,"linkquality":90}'
SOS2_NULL: Final = b'{"action":null,"battery":100,"last_seen":"2026-04-17T23:33:17+08:00","linkquality":14}'
SOS2_EMERGENCY: Final = b'{"action":"emergency","battery":100,"last_seen":"2026-04-17T23:33:22+08:00","linkquality":18}'
GAS_QUIET: Final = b'{"gas":false,"tamper":false,"sensitivity":"medium","gas_density":0,"linkquality":120}'
GAS_ALARM: Final = b'{"gas":true,"tamper":false,"sensitivity":"medium","gas_density":38,"linkquality":120}'
# Feibit SEB01ZB (IAS zone `sos`, `battery_low`, `tamper`; no percentage: feibit.ts L32-40 exposes)
LATCHED_OK: Final = b'{"sos":false,"battery_low":false,"tamper":false,"linkquality":80}'
LATCHED_BATTERY_LOW: Final = b'{"sos":false,"battery_low":true,"tamper":false,"linkquality":78}'
# Xiaomi JTQJ-BF-01LM/BW test press: the quiet snapshot with `test: true` (keys as GAS_QUIET; `test` per the model's
# exposes, research note §1.2); not a recorded log line.
GAS_TEST: Final = b'{"gas":false,"test":true,"tamper":false,"sensitivity":"medium","gas_density":0,"linkquality":120}'

# --- models added for issue 16's leftovers -------------------------------------------------------------------------
# Tuya TS0601_smoke_1: DP 1 smoke, DP 4 tamper, DP 14 battery_low (tuya.ts L11738-11752); keys per the converter.
TUYA_SMOKE_QUIET: Final = b'{"smoke":false,"tamper":false,"battery_low":false,"linkquality":96}'
TUYA_SMOKE_ALARM: Final = b'{"smoke":true,"tamper":false,"battery_low":false,"linkquality":96}'
TUYA_SMOKE_BATTERY_LOW: Final = b'{"smoke":false,"tamper":false,"battery_low":true,"linkquality":90}'
# Heiman HS1CG-E: exposes gas, battery_low, tamper (heiman.ts)
HEIMAN_GAS_QUIET: Final = b'{"gas":false,"battery_low":false,"tamper":false,"linkquality":120}'
HEIMAN_GAS_ALARM: Final = b'{"gas":true,"battery_low":false,"tamper":false,"linkquality":120}'
# Heiman HS1RC-N: action emergency / disarm / arm_partial_zones / arm_all_zones (heiman.ts; command_emergency of the
# research note §1.2, the same message shape as the Tuya TS0215A_sos log)
HEIMAN_REMOTE_SOS: Final = b'{"action":"emergency","battery":100,"linkquality":90}'
HEIMAN_REMOTE_ARM: Final = (
    b'{"action":"arm_all_zones","action_code":null,"action_zone":0,"action_transaction":12,'
    b'"battery":100,"linkquality":90}'
)
# Xiaomi RTCGQ01LM: the Z2M docs' example (mqtt_topics_and_messages.md), then the synthesised false
XIAOMI_PIR_MOTION: Final = b'{ "occupancy": true }'
XIAOMI_PIR_IDLE: Final = b'{ "occupancy": false }'
# Heiman PIR_TPV12: occupancy, tamper, battery_low, battery (heiman.ts L3380-3388)
HEIMAN_PIR_IDLE: Final = b'{"occupancy":false,"tamper":false,"battery_low":false,"battery":88,"linkquality":70}'
HEIMAN_PIR_MOTION: Final = b'{"occupancy":true,"tamper":false,"battery_low":false,"battery":88,"linkquality":70}'
# Tuya ZY-M100 (Andrik45719/ZY-M100#1, verbatim), then the same room empty
MMWAVE_PRESENT: Final = (
    b'{"detection_delay":0.1,"fading_time":30,"illuminance_lux":369,"last_seen":"2024-09-07T15:54:41.147Z",'
    b'"linkquality":98,"maximum_range":6,"minimum_range":0.3,"presence":true,"radar_sensitivity":2,'
    b'"target_distance":null}'
)
MMWAVE_EMPTY: Final = MMWAVE_PRESENT.replace(b'"presence":true', b'"presence":false')
# Aqara FP1 (zigbee2mqtt#11935, verbatim)
FP1_APPROACH: Final = (
    b'{"approach_distance":"medium","linkquality":204,"monitoring_mode":"undirected","power_outage_count":1,'
    b'"presence":true,"presence_event":"approach","temperature":24,"update":{"state":"idle"},"update_available":false}'
)
FP1_AWAY: Final = FP1_APPROACH.replace(b'"presence_event":"approach"', b'"presence_event":"away"').replace(
    b'"linkquality":204', b'"linkquality":207'
)
FP1_LEFT: Final = FP1_AWAY.replace(b'"presence":true', b'"presence":false')

# --- bed strap and fall radars (issue 16, step 4) ------------------------------------------------------------------
# Heiman HS2FD-EF1-3.0: verbatim from zigbee2mqtt#27975 (the `update` object trimmed to its `state`); the fall payloads
# are that message with `fall_status` set to the converter's other values (heiman.ts: bits 4-5 of the occupancy
# attribute → normal / fall_warning / fall_alarm), not recorded log lines.
FALL_RADAR_NORMAL: Final = (
    b'{"cell_mounted_table":"-760,1900,-760,1900,2400","enable_indicator":1,"enable_sub_region_isolation":0,'
    b'"fall_status":"normal","installation_method":0,"linkquality":255,"occupancy":true,"sensitivity":1,'
    b'"sensor_status":"activity","sub_region_isolation_table":"0,0,0,0,0,0","update":{"state":"idle"},'
    b'"wall_mounted_table":"-720,2045,4093,1600"}'
)
FALL_RADAR_WARNING: Final = FALL_RADAR_NORMAL.replace(b'"fall_status":"normal"', b'"fall_status":"fall_warning"')
FALL_RADAR_ALARM: Final = FALL_RADAR_NORMAL.replace(b'"fall_status":"normal"', b'"fall_status":"fall_alarm"')
# Tuya MIR-HE200-TY: keys and values from its Z2M device page (exposes; fall_down_status none / maybe_fall / fall,
# zigbee-herdsman-converters#3701); not a recorded log line.
TUYA_RADAR_QUIET: Final = (
    b'{"illuminance_lux":120,"presence":true,"occupancy":true,"motion_speed":0,"motion_direction":"standing_still",'
    b'"radar_sensitivity":7,"radar_scene":"toilet","tumble_switch":"ON","fall_sensitivity":5,"tumble_alarm_time":1,'
    b'"fall_down_status":"none","static_dwell_alarm":"","linkquality":110}'
)
TUYA_RADAR_MAYBE: Final = TUYA_RADAR_QUIET.replace(b'"fall_down_status":"none"', b'"fall_down_status":"maybe_fall"')
TUYA_RADAR_FALL: Final = TUYA_RADAR_QUIET.replace(b'"fall_down_status":"none"', b'"fall_down_status":"fall"')
# Tuya TS0601_bed_presence_sensor: keys from its Z2M device page (occupancy, battery, illuminance = raw pressure,
# sensitivity, interval_time, presence_delay, presence_time, work_state); not a recorded log line.
BED_EMPTY: Final = (
    b'{"occupancy":false,"battery":96,"illuminance":12,"sensitivity":"middle","interval_time":5,'
    b'"presence_delay":30,"presence_time":5,"work_state":"none","linkquality":87}'
)
BED_IN: Final = (
    b'{"occupancy":true,"battery":96,"illuminance":430,"sensitivity":"middle","interval_time":5,'
    b'"presence_delay":30,"presence_time":5,"work_state":"presence","linkquality":87}'
)
BED_IN_5MIN: Final = BED_IN.replace(b'"work_state":"presence"', b'"work_state":"presence_5min"').replace(
    b'"illuminance":430', b'"illuminance":455'
)
