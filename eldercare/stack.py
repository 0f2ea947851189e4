"""The local stack: a provisioned mosquitto and an influxd, used by ``eldercare up`` and the test fixtures."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from eldercare.certs import TlsFiles
from eldercare.servers._child import ServerError
from eldercare.servers.influxd import Influxd
from eldercare.servers.mosquitto import AUTOSAVE_CHANGES, Mosquitto, NatsBridge
from eldercare.settings import Settings
from gateway.listener import probe_credentials
from gateway.provisioning import gateway_password, render_acl, render_backend_acl, render_password_file


class Broker:
    """A running mosquitto plus its accounts: the backend's and one per provisioned home gateway."""

    def __init__(
        self,
        *,
        data_dir: Path,
        secret: str,
        backend_user: str = "backend",
        port: int = 0,
        backend_port: int = 0,
        autosave_changes: int = AUTOSAVE_CHANGES,
        tls: TlsFiles | None = None,
        require_client_cert: bool = False,
        bridge: NatsBridge | None = None,
        tcp_nodelay: bool = True,
    ) -> None:
        self.secret = secret
        self.backend_user = backend_user
        self.backend_password = secrets.token_urlsafe(24)
        self.sites: set[str] = set()
        self.server = Mosquitto(
            data_dir=data_dir,
            passwd=self._passwd(),
            acl=self._acl(),
            backend_passwd=render_password_file({backend_user: self.backend_password}),
            backend_acl=render_backend_acl(backend_user=backend_user),
            port=port,
            backend_port=backend_port,
            autosave_changes=autosave_changes,
            tls=tls,
            require_client_cert=require_client_cert,
            bridge=bridge,
            tcp_nodelay=tcp_nodelay,
        )

    @property
    def host(self) -> str:
        """Broker host (loopback)."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The home gateways' TCP port (client id = username)."""
        return self.server.port

    @property
    def backend_port(self) -> int:
        """The backend's TCP port (only the backend account can log in there)."""
        return self.server.backend_port

    @property
    def tls_port(self) -> int:
        """The MQTT-over-TLS port (0 without TLS)."""
        return self.server.tls_port

    def _passwd(self) -> str:
        return render_password_file({site: gateway_password(self.secret, site) for site in self.sites})

    def _acl(self) -> str:
        return render_acl(sites=self.sites)

    def gateway_password(self, site: str) -> str:
        """The MQTT password of a provisioned home gateway (username = site id)."""
        return gateway_password(self.secret, site)

    def provision(self, sites: Iterable[str], *, timeout: float = 30.0) -> None:
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

    def can_connect(self, username: str, password: str, *, port: int | None = None) -> bool:
        """True if the broker accepts these credentials (on the gateway listener unless ``port`` is given)."""
        return probe_credentials(host=self.host, port=port or self.port, username=username, password=password)

    def start(self) -> None:
        """Start the broker."""
        self.server.start()

    def stop(self) -> None:
        """Stop the broker cleanly (it saves its persistence file)."""
        self.server.stop()

    def kill(self) -> None:
        """Crash the broker (SIGKILL): no final save of its in-memory database."""
        self.server.kill()


def nats_bridge(
    settings: Settings, *, addresses: Sequence[str], sites: Sequence[str], client_id: str = "eldercare-bridge"
) -> NatsBridge:
    """An edge broker's bridge into the NATS cluster's MQTT listeners (``host:port``), for the homes ``sites``.

    With ``ELDERCARE_NATS_BRIDGE_USER`` it logs in as that user, which may read only these homes' commands, so it
    subscribes to each home's; without, one subscription covers every home (a cluster without accounts).
    ``ELDERCARE_NATS_CA`` set: TLS, the nodes' certificates checked against it.
    """
    user = settings.nats_bridge_user
    return NatsBridge(
        addresses=addresses,
        client_id=client_id,
        username=user,
        password=settings.nats_bridge_password.get_secret_value() if user else "",
        cafile=settings.nats_ca,
        sites=tuple(sites) if user else (),
    )


@contextlib.contextmanager
def local_stack(
    *, data_dir: Path, secret: str | None = None, tcp_nodelay: bool = True
) -> Iterator[tuple[Broker, Influxd]]:
    """Start mosquitto and influxd under ``data_dir`` and stop both on exit, whatever happens.

    ``tcp_nodelay=False`` starts the broker with Nagle's algorithm on (mosquitto's default; benchmarks only).
    """
    broker = Broker(
        data_dir=data_dir / "mosquitto", secret=secret or secrets.token_urlsafe(32), tcp_nodelay=tcp_nodelay
    )
    influx = Influxd(data_dir=data_dir / "influxdb")
    with contextlib.ExitStack() as stack:
        broker.start()
        stack.callback(broker.stop)
        influx.start()
        stack.callback(influx.stop)
        yield broker, influx
