"""Alert management: lifecycle, store, escalation, notifications, one-tap links, audit."""
