"""Zigbee2MQTT homes: a per-model mapping table (data, ``models.toml``) and an adapter to contract v1 readings."""
