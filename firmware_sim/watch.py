"""A simulated 4G elder watch (4G 老人手表) speaking the ``[VV*IMEI*LEN*CONTENT]`` text protocol over TCP.

Payload shapes follow the frames recorded in Traccar's test suite (``WatchProtocolDecoderTest.java``, see
docs/devices.md): ``LK,steps,rolling,battery`` heartbeats, ``UD``/``AL`` position and alarm reports whose hex
status word carries SOS (bit 16) and fall (bit 21), ``heart``/``bphrt`` vitals. Like the rest of the simulator it
imports nothing from the backend: it only writes frames and reads the server's replies.

>>> frame("3G", "4700186508", "LK,0,10,100")
b'[3G*4700186508*000B*LK,0,10,100]'
>>> position_content("AL", ts_ms=1577440064000, lat=22.571707, lon=113.8613968, battery=81, steps=0, status=SOS_BIT)
'AL,271219,094744,A,22.571707,N,113.8613968,E,0.00,0.0,0.0,7,100,81,0,0,00010000,0,0'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import time
from typing import Final

SOS_BIT: Final = 1 << 16
"""Status word bit of an SOS key press."""
FALL_BIT: Final = 1 << 21
"""Status word bit of a detected fall."""
REMOVED_BIT: Final = 1 << 20
"""Status word bit of the watch taken off the wrist."""
LOW_BATTERY_BIT: Final = 1 << 0
"""Status word bit of a low battery."""


def wall_ms() -> int:
    """Current wall-clock time in epoch ms."""
    return time.time_ns() // 1_000_000


def frame(vendor: str, imei: str, content: str | bytes, *, index: str | None = None) -> bytes:
    """One frame; ``LEN`` is the content's byte length in four upper-case hex digits."""
    body = content.encode() if isinstance(content, str) else content
    idx = f"{index}*" if index is not None else ""
    return f"[{vendor}*{imei}*{idx}{len(body):04X}*".encode() + body + b"]"


def position_content(
    command: str,
    *,
    ts_ms: int,
    lat: float,
    lon: float,
    battery: int,
    steps: int,
    status: int = 0,
    valid: bool = True,
) -> str:
    """Content of a ``UD``/``AL`` report: UTC ``ddmmyy,hhmmss``, position, battery, steps, hex status, no cells."""
    when = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    return (
        f"{command},{when:%d%m%y},{when:%H%M%S},{'A' if valid else 'V'},{abs(lat):.6f},{ns},{abs(lon):.7f},{ew},"
        f"0.00,0.0,0.0,7,100,{battery},{steps},0,{status:08X},0,0"
    )


class SimWatch:
    """One watch on one TCP connection; ``async with SimWatch(...) as w: await w.login(); await w.sos()``.

    Every ``send_*`` method writes one frame; :meth:`reply` reads the server's next reply frame (``LK``, ``AL``).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        imei: str,
        vendor: str = "3G",
        lat: float = 30.2741,
        lon: float = 120.1551,
        battery: int = 90,
    ) -> None:
        self.host = host
        self.port = port
        self.imei = imei
        self.vendor = vendor
        self.lat = lat
        self.lon = lon
        self.battery = battery
        self.steps = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the TCP connection."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self) -> SimWatch:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests of the server's framing)."""
        if self._writer is None:
            raise RuntimeError("watch not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def send(self, content: str, *, imei: str | None = None) -> None:
        """Write one frame with this watch's vendor and IMEI (or another ``imei``)."""
        await self.send_raw(frame(self.vendor, imei or self.imei, content))

    async def reply(self, timeout: float = 10.0) -> str:
        """The content of the server's next reply frame (raises ``TimeoutError``, ``EOFError`` when closed)."""
        if self._reader is None:
            raise RuntimeError("watch not connected")
        async with asyncio.timeout(timeout):
            head = await self._reader.readuntil(b"*")  # "[VV*"
            head += await self._reader.readuntil(b"*")  # IMEI*
            length_field = (await self._reader.readuntil(b"*"))[:-1]
            length = int(length_field, 16)
            body = await self._reader.readexactly(length + 1)
        if not head.startswith(b"[") or not body.endswith(b"]"):
            raise ValueError(f"not a reply frame: {head + body!r}")
        return body[:-1].decode()

    async def closed_by_server(self, timeout: float = 10.0) -> bool:
        """Wait until the server closes the connection; True if it did (False on timeout)."""
        if self._reader is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                while await self._reader.read(4096):
                    pass
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True
        return True

    async def login(self) -> str:
        """Send the first heartbeat (``LK,steps,rolling,battery``) and return the server's answer."""
        await self.lk()
        return await self.reply()

    async def lk(self, *, steps: int | None = None, battery: int | None = None) -> None:
        """Heartbeat with steps and battery."""
        if steps is not None:
            self.steps = steps
        if battery is not None:
            self.battery = battery
        await self.send(f"LK,{self.steps},0,{self.battery}")

    async def position(self, *, status: int = 0, command: str = "UD", ts_ms: int | None = None) -> None:
        """Position report (``UD``) or alarm (``AL``) with the given status word, stamped now (UTC)."""
        content = position_content(
            command,
            ts_ms=wall_ms() if ts_ms is None else ts_ms,
            lat=self.lat,
            lon=self.lon,
            battery=self.battery,
            steps=self.steps,
            status=status,
        )
        await self.send(content)

    async def sos(self, *, ts_ms: int | None = None) -> None:
        """The SOS key: an ``AL`` with bit 16."""
        await self.position(status=SOS_BIT, command="AL", ts_ms=ts_ms)

    async def fall(self, *, ts_ms: int | None = None) -> None:
        """A detected fall: an ``AL`` with bit 21 (and bit 4, motion, as in the recorded frame)."""
        await self.position(status=FALL_BIT | 1 << 4, command="AL", ts_ms=ts_ms)

    async def heart(self, hr: int) -> None:
        """A heart-rate measurement (``heart,71``)."""
        await self.send(f"heart,{hr}")

    async def blood_pressure(self, systolic: int, diastolic: int, hr: int) -> None:
        """A blood-pressure measurement with heart rate (``bphrt,120,79,73,,,,``)."""
        await self.send(f"bphrt,{systolic},{diastolic},{hr},,,,")


async def _demo(args: argparse.Namespace) -> None:
    async with SimWatch(host=args.host, port=args.port, imei=args.imei, battery=args.battery) as watch:
        print("login →", await watch.login())
        await watch.heart(args.hr)
        if args.sos:
            await watch.sos()
            print("SOS →", await watch.reply())
        if args.fall:
            await watch.fall()
            print("fall →", await watch.reply())
        for _ in range(args.heartbeats):
            await asyncio.sleep(args.interval)
            await watch.lk()
            print("LK →", await watch.reply())


def main(argv: list[str] | None = None) -> None:
    """``python -m firmware_sim.watch --port 5093 --imei 8800000015 --sos``: one watch against a server."""
    parser = argparse.ArgumentParser(description="Simulated 4G elder watch (text protocol over TCP).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--imei", required=True)
    parser.add_argument("--battery", type=int, default=90)
    parser.add_argument("--hr", type=int, default=72)
    parser.add_argument("--sos", action="store_true", help="press the SOS key after logging in")
    parser.add_argument("--fall", action="store_true", help="report a fall after logging in")
    parser.add_argument("--heartbeats", type=int, default=0, help="LK heartbeats to send afterwards")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between heartbeats")
    asyncio.run(_demo(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
