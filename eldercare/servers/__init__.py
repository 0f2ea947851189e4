"""Real servers (mosquitto, influxd, postgresql) started as child processes on free ports."""
