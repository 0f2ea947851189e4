"""Device simulator: simulated elders, their home devices and gateways, speaking only the wire contract v1.

Nothing here imports the backend (gateway, ingest, alerts, dashboards, eldercare).

Building blocks available now:

- :mod:`firmware_sim.wire`: pure encoders ``(topic, payload bytes)`` for every message of the contract,
  with per-device ``seq`` counters (:class:`~firmware_sim.wire.HomeWire`).
- :mod:`firmware_sim.publisher`: :class:`~firmware_sim.publisher.GatewayPublisher`, one paho-mqtt connection
  per home gateway (Last Will, retained online status, QoS 1, records downstream commands).
- :func:`firmware_sim.demo.demo_home_messages`: one message of every kind for one home.
"""
