"""Device simulator: simulated elders, their home devices and gateways, speaking only the wire contract v1.

Nothing here imports the backend (gateway, ingest, alerts, dashboards, eldercare); docs/simulator.md
describes the model.

Python API (used by tests and the detection engine's evaluation)::

    from firmware_sim.scenario import generate

    sim = generate(homes=100, days=30, seed=1, mix="realistic")   # plans only: cheap
    sim.registry              # dict in the registry format (docs/registry.md)
    sim.ground_truth          # list[Incident]: id, site, type, start_ms, end_ms, expect, forbid, device, notes
    sim.ground_truth_document()   # the same as the ground_truth.json content
    for received_ms, topic, payload in sim.messages():   # sorted by received time, rendered lazily
        ...
    for recv, topics, payloads in sim.batches():          # same stream, one simulated day per batch

Same seed, same parameters → byte-identical stream. Other entry points:

- :func:`firmware_sim.recording.write_simulation`: ``recording.jsonl`` + ``ground_truth.json`` + ``registry.json``;
  :func:`firmware_sim.recording.read_recording` iterates a recording back.
- :func:`firmware_sim.live.run_live`: publish a stream to a broker, one MQTT connection per home (selector-driven,
  so 10,000+ homes fit in one process).
- :class:`firmware_sim.home_gateway.GatewayPublisher`: one home gateway (Last Will, retained status, QoS 1,
  records downstream commands).
- :func:`firmware_sim.wire` encoders and :func:`firmware_sim.demo.demo_home_messages` (every message kind once).
- :func:`firmware_sim.cli.simulate`: the ``simulate`` command as a typed function; ``python -m firmware_sim``.
"""
