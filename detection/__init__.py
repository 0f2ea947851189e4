"""Anomaly-detection core: readings in, ``Alert`` out, in event time; no database."""
