"""NATS accounts of a secured cluster: one user per gateway, one for the workers, one for the routes.

The gateway users mirror the mosquitto accounts (:mod:`gateway.provisioning`): the user name is the site id and the
password is the same HMAC of the deployment secret, so one provisioning source serves both brokers. The nodes only
hold bcrypt hashes. Measured on nats-server 2.9.10 (``tests/scale/test_scale_nats_security.py``):

- publish permissions are checked on the subject *after* the ``mappings`` rewrite, so a gateway may publish
  ``part.{P}.ec.v1.{site}.*.*.{telemetry,event,status}`` and, for a Zigbee2MQTT bridge, ``part.{P}.z2m.{site}.``
  ``{*, *.availability, bridge.*}``, where ``P`` is its own home's partition: neither another home's topics nor
  its own home in another partition (a Z2M bridge's Last Will is checked the same way, and arrives);
- a QoS 1 MQTT subscription needs subscribe permission on ``$MQTT.sub.>`` (its JetStream delivery subject); an MQTT
  client cannot subscribe to that subject itself, and gateway users may open only MQTT connections
  (``allowed_connection_types``), so no plain NATS connection can read it;
- QoS 1 publishing needs nothing more: nats-server stores into ``$MQTT_msgs`` with its own internal client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import bcrypt

from gateway.models import CONTRACT_PREFIX, Z2M_PREFIX
from gateway.provisioning import check_site_id, gateway_password
from ingest.partitions import DEFAULT_PARTITIONS, Z2M_UPLINKS, partition_of

UPLINK: Final = ("telemetry", "event", "status")
BCRYPT_COST: Final = 10
"""For the workers' and the routes' passwords, chosen by the operator (at least 16 characters): few connects."""
GATEWAY_BCRYPT_COST: Final = 4
"""For gateway passwords: each is a 256-bit HMAC output, which no cost factor makes harder to guess, while the
server pays one bcrypt check per connect. Measured on the shared 2-core box: 2.6 ms at cost 4, 303 ms at 10,
652 ms at 11 (nats-server's ``passwd`` default), so 10,000 gateways reconnecting after a node restart would cost
that node ~1.8 h of CPU at cost 11 and ~26 s at cost 4 (rendering their hashes costs the same once)."""
WORKER_PUBLISH: Final = ("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>", "ec.v1.*.*.*.cmd")
"""The JetStream API, acknowledgements, flow control, KV (leases, heartbeats, snapshot pointers), object store,
and the gateways' command topics (the downlink: ``stored`` confirmations, check-in prompts)."""
WORKER_SUBSCRIBE: Final = ("_INBOX.>",)


def bcrypt_hash(password: str, *, cost: int = BCRYPT_COST) -> str:
    """A bcrypt hash nats-server accepts in place of a password (``$2b$…``)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def gateway_permissions(site: str, *, partitions: int = DEFAULT_PARTITIONS) -> dict[str, object]:
    """What a home gateway may do: publish its home's uplink into its partition, read its home's commands.

    The same account serves a contract v1 gateway or a Zigbee2MQTT bridge (base topic ``z2m/{site}``), as the
    mosquitto ACL does (:func:`gateway.provisioning.render_acl`). Z2M subscribes to its whole base topic,
    ``z2m/{site}/#``, which nats-server 2.9.10 turns into two subscriptions, ``z2m.{site}.>`` and ``z2m.{site}``:
    without the second the SUBACK is a refusal (measured). Its own uplinks are mapped to ``part.{P}.…``, so what
    reaches it there is its commands (``…/set``, ``bridge/request/…``).

    >>> perms = gateway_permissions("home-1")
    >>> perms["publish"]["allow"][0], perms["publish"]["allow"][-1]
    ('part.56.ec.v1.home-1.*.*.telemetry', 'part.56.z2m.home-1.bridge.*')
    >>> perms["subscribe"]["allow"]
    ['ec.v1.home-1.*.*.cmd', 'z2m.home-1', 'z2m.home-1.>', '$MQTT.sub.>']
    """
    return {
        "publish": {"allow": _uplinks(site, partitions=partitions) + _z2m_uplinks(site, partitions=partitions)},
        "subscribe": {"allow": [_commands(site), f"{Z2M_PREFIX}.{site}", f"{Z2M_PREFIX}.{site}.>", "$MQTT.sub.>"]},
    }


def bridge_permissions(sites: Iterable[str], *, partitions: int = DEFAULT_PARTITIONS) -> dict[str, object]:
    """What an edge mosquitto's bridge may do: what each of its homes' gateways may, and nothing else.

    Its homes' uplinks into their partitions, and their commands (one QoS 1 subscription per home, delivered
    through ``$MQTT.sub.>``); no JetStream API, KV, object store, ``$SYS``, nor any other home's subjects.

    >>> perms = bridge_permissions(["home-1", "home-2"])
    >>> perms["publish"]["allow"][0], perms["publish"]["allow"][3]
    ('part.56.ec.v1.home-1.*.*.telemetry', 'part.49.ec.v1.home-2.*.*.telemetry')
    >>> perms["subscribe"]["allow"]
    ['ec.v1.home-1.*.*.cmd', 'ec.v1.home-2.*.*.cmd', '$MQTT.sub.>']
    """
    homes = sorted(set(sites))
    return {
        "publish": {"allow": [s for site in homes for s in _uplinks(site, partitions=partitions)]},
        "subscribe": {"allow": [*(_commands(site) for site in homes), "$MQTT.sub.>"]},
    }


def _uplinks(site: str, *, partitions: int) -> list[str]:
    """A home's uplink subjects as publish permissions check them: after the mapping, in its own partition."""
    check_site_id(site)
    prefix = CONTRACT_PREFIX.replace("/", ".")
    return [f"part.{partition_of(site, partitions)}.{prefix}.{site}.*.*.{kind}" for kind in UPLINK]


def _z2m_uplinks(site: str, *, partitions: int) -> list[str]:
    """A Zigbee2MQTT bridge's uplink subjects after the mapping (``ingest.partitions.Z2M_UPLINKS``)."""
    check_site_id(site)
    return [f"part.{partition_of(site, partitions)}.{Z2M_PREFIX}.{site}.{shape}" for shape in Z2M_UPLINKS]


def _commands(site: str) -> str:
    """A home's command subjects (not mapped: they keep their topic)."""
    check_site_id(site)
    return f"{CONTRACT_PREFIX.replace('/', '.')}.{site}.*.*.cmd"


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """The accounts of a secured cluster; passwords are plaintext here and hashed when rendered.

    ``gateway_secret`` derives each gateway's password (``ELDERCARE_GATEWAY_SECRET``); ``worker_password`` is
    ``ELDERCARE_NATS_PASSWORD``; ``route_password`` lets the nodes join each other (nothing else may route in).
    ``bridge_user``/``bridge_password`` (``ELDERCARE_NATS_BRIDGE_USER``/``_PASSWORD``, optional) are an edge
    mosquitto's bridge, allowed only what the gateways of ``bridge_sites`` (default: every site) are allowed.
    """

    sites: tuple[str, ...]
    gateway_secret: str
    worker_user: str
    worker_password: str
    route_password: str
    partitions: int = DEFAULT_PARTITIONS
    bcrypt_cost: int = BCRYPT_COST
    gateway_bcrypt_cost: int = GATEWAY_BCRYPT_COST
    route_user: str = "eldercare-route"
    bridge_user: str = ""
    bridge_password: str = ""
    bridge_sites: tuple[str, ...] | None = None
    generations: Mapping[str, int] = field(default_factory=dict)
    """Each gateway account's key generation (``eldercare broker revoke`` moves it on); absent: 0."""
    _hashes: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for secret, what in (
            (self.gateway_secret, "gateway secret"),
            (self.worker_password, "worker password"),
            (self.route_password, "route password"),
        ):
            if len(secret) < 16:
                raise ValueError(f"the {what} must be at least 16 characters")
        for site in self.sites:
            check_site_id(site)
        if self.worker_user in self.sites:
            raise ValueError(f"the worker user {self.worker_user!r} collides with a site id")
        if self.bridge_user:
            if len(self.bridge_password) < 16:
                raise ValueError("the bridge password must be at least 16 characters")
            if self.bridge_user in {*self.sites, self.worker_user, self.route_user}:
                raise ValueError(f"the bridge user {self.bridge_user!r} collides with a site id or another user")
            unknown = sorted(set(self.bridge_homes) - set(self.sites))
            if unknown:
                raise ValueError(f"the bridge's homes must be provisioned sites: {', '.join(unknown)}")

    @property
    def bridge_homes(self) -> tuple[str, ...]:
        """The homes behind the edge bridge (every site unless ``bridge_sites`` names them)."""
        return self.sites if self.bridge_sites is None else self.bridge_sites

    def _hash(self, user: str, password: str, *, cost: int) -> str:
        """One hash per user per config (the nodes of one cluster share them; bcrypt is slow by design)."""
        if user not in self._hashes:
            self._hashes[user] = bcrypt_hash(password, cost=cost)
        return self._hashes[user]

    def authorization(self) -> str:
        """The server's ``authorization`` block (JSON values are valid NATS config)."""
        users = [
            {
                "user": self.worker_user,
                "password": self._hash(self.worker_user, self.worker_password, cost=self.bcrypt_cost),
                # MQTT too: the launcher's first MQTT connection makes nats-server create its streams.
                "allowed_connection_types": ["STANDARD", "MQTT"],
                "permissions": {
                    "publish": {"allow": list(WORKER_PUBLISH)},
                    "subscribe": {"allow": list(WORKER_SUBSCRIBE)},
                },
            }
        ]
        for site in sorted(set(self.sites)):
            users.append(
                {
                    "user": site,
                    "password": self._hash(
                        site,
                        gateway_password(self.gateway_secret, site, self.generations.get(site, 0)),
                        cost=self.gateway_bcrypt_cost,
                    ),
                    "allowed_connection_types": ["MQTT"],
                    "permissions": gateway_permissions(site, partitions=self.partitions),
                }
            )
        if self.bridge_user:
            users.append(
                {
                    "user": self.bridge_user,
                    "password": self._hash(self.bridge_user, self.bridge_password, cost=self.bcrypt_cost),
                    # mosquitto's bridge speaks MQTT: no plain NATS connection, hence no request/reply either.
                    "allowed_connection_types": ["MQTT"],
                    "permissions": bridge_permissions(self.bridge_homes, partitions=self.partitions),
                }
            )
        lines = ",\n    ".join(json.dumps(u) for u in users)
        return f"authorization {{\n  users: [\n    {lines}\n  ]\n}}\n"

    def cluster_authorization(self) -> str:
        """The ``cluster`` block's ``authorization``: only nodes that know the route password may route in."""
        hashed = self._hash(self.route_user, self.route_password, cost=self.bcrypt_cost)
        return f'  authorization {{ user: "{self.route_user}", password: "{hashed}" }}\n'

    def route_credentials(self) -> str:
        """``user:password@`` for the route URLs (the plaintext lives only in the 0600 config file)."""
        return f"{self.route_user}:{self.route_password}@"

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``accounts.conf`` (top level) and ``cluster-auth.conf`` (inside ``cluster {}``), both 0600.

        Every node's configuration includes them (``include "accounts.conf"``); after a change (a new gateway),
        restart or reload each node (``nats-server --signal reload=PID``; reload is not tested here).
        """
        directory.mkdir(parents=True, exist_ok=True)
        out = []
        for name, text in (
            ("accounts.conf", self.authorization()),
            ("cluster-auth.conf", self.cluster_authorization()),
        ):
            path = directory / name
            path.touch(mode=0o600, exist_ok=True)
            path.chmod(0o600)
            path.write_text("# Generated by eldercare nats-accounts: do not edit by hand.\n" + text)
            out.append(path)
        return out[0], out[1]
