"""Alarm-receiving-centre (ARC) output: life-safety alerts as Contact ID events over SIA DC-09 (TCP)."""
