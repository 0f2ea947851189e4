"""The local stack: a provisioned mosquitto and an influxd, used by ``eldercare up`` and the test fixtures."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from eldercare.certs import TlsFiles
from eldercare.servers._child import ServerError
from eldercare.servers.influxd import Influxd
from eldercare.servers.mosquitto import Mosquitto
from gateway.listener import probe_credentials
from gateway.provisioning import gateway_password, render_acl, render_password_file


class Broker:
    """A running mosquitto plus its accounts: the backend's and one per provisioned home gateway."""

    def __init__(
        self,
        *,
        data_dir: Path,
        secret: str,
        backend_user: str = "backend",
        port: int = 0,
        tls: TlsFiles | None = None,
        require_client_cert: bool = False,
    ) -> None:
        self.secret = secret
        self.backend_user = backend_user
        self.backend_password = secrets.token_urlsafe(24)
        self.sites: set[str] = set()
        self.server = Mosquitto(
            data_dir=data_dir, passwd=self._passwd(), acl=self._acl(), port=port, tls=tls,
            require_client_cert=require_client_cert,
        )  # fmt: skip

    @property
    def host(self) -> str:
        """Broker host (loopback)."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """Broker TCP port."""
        return self.server.port

    @property
    def tls_port(self) -> int:
        """The MQTT-over-TLS port (0 without TLS)."""
        return self.server.tls_port

    def _passwd(self) -> str:
        accounts = {site: gateway_password(self.secret, site) for site in self.sites}
        accounts[self.backend_user] = self.backend_password
        return render_password_file(accounts)

    def _acl(self) -> str:
        return render_acl(sites=self.sites, backend_user=self.backend_user)

    def gateway_password(self, site: str) -> str:
        """The MQTT password of a provisioned home gateway (username = site id)."""
        return gateway_password(self.secret, site)

    def provision(self, sites: Iterable[str], *, timeout: float = 10.0) -> None:
        """Add home gateway accounts and wait until the running broker accepts them."""
        new = set(sites) - self.sites
        if not new:
            return
        self.sites |= new
        self.server.reload(passwd=self._passwd(), acl=self._acl())
        probe = sorted(new)[-1]
        deadline = time.monotonic() + timeout
        while not self.can_connect(probe, self.gateway_password(probe)):
            if time.monotonic() > deadline:
                raise ServerError(f"broker did not accept the new account {probe!r} within {timeout} s")
            time.sleep(0.05)

    def can_connect(self, username: str, password: str) -> bool:
        """True if the broker accepts these credentials."""
        return probe_credentials(host=self.host, port=self.port, username=username, password=password)

    def start(self) -> None:
        """Start the broker."""
        self.server.start()

    def stop(self) -> None:
        """Stop the broker cleanly (it saves its persistence file)."""
        self.server.stop()


@contextlib.contextmanager
def local_stack(*, data_dir: Path, secret: str | None = None) -> Iterator[tuple[Broker, Influxd]]:
    """Start mosquitto and influxd under ``data_dir`` and stop both on exit, whatever happens."""
    broker = Broker(data_dir=data_dir / "mosquitto", secret=secret or secrets.token_urlsafe(32))
    influx = Influxd(data_dir=data_dir / "influxdb")
    with contextlib.ExitStack() as stack:
        broker.start()
        stack.callback(broker.stop)
        influx.start()
        stack.callback(influx.stop)
        yield broker, influx
