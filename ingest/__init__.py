"""Ingest: readings to InfluxDB (line protocol, batching writer, disk spool, reader)."""
