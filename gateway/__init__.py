"""MQTT gateway: receives, validates and decodes home telemetry (contract v1)."""
