"""4G elder watches: the Chinese ``[VV*IMEI*LEN*CONTENT]`` text protocol over TCP (see docs/devices.md)."""
