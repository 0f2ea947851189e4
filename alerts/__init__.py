"""Anomaly detection core, alert lifecycle, escalation and notifications."""
