"""NATS accounts of a secured cluster: one user per gateway, one for the workers, one for the routes.

The gateway users mirror the mosquitto accounts (:mod:`gateway.provisioning`): the user name is the site id and the
password is the same HMAC of the deployment secret, so one provisioning source serves both brokers. The nodes only
hold bcrypt hashes. Measured on nats-server 2.9.10 (``tests/scale/test_scale_nats_security.py``):

- publish permissions are checked on the subject *after* the ``mappings`` rewrite, so a gateway may publish
  ``part.{P}.ec.v1.{site}.*.*.{telemetry,event,status}`` where ``P`` is its own home's partition: neither another
  home's topics nor its own home in another partition;
- a QoS 1 MQTT subscription needs subscribe permission on ``$MQTT.sub.>`` (its JetStream delivery subject); an MQTT
  client cannot subscribe to that subject itself, and gateway users may open only MQTT connections
  (``allowed_connection_types``), so no plain NATS connection can read it;
- QoS 1 publishing needs nothing more: nats-server stores into ``$MQTT_msgs`` with its own internal client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import bcrypt

from gateway.models import CONTRACT_PREFIX
from gateway.provisioning import check_site_id, gateway_password
from ingest.partitions import DEFAULT_PARTITIONS, partition_of

UPLINK: Final = ("telemetry", "event", "status")
BCRYPT_COST: Final = 11
"""nats-server's own default (``nats server passwd``); each connect costs the server one bcrypt check."""
WORKER_PUBLISH: Final = ("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>")
"""The JetStream API, acknowledgements, flow control, KV (leases, heartbeats, snapshot pointers), object store."""
WORKER_SUBSCRIBE: Final = ("_INBOX.>",)


def bcrypt_hash(password: str, *, cost: int = BCRYPT_COST) -> str:
    """A bcrypt hash nats-server accepts in place of a password (``$2b$…``)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()


def gateway_permissions(site: str, *, partitions: int = DEFAULT_PARTITIONS) -> dict[str, object]:
    """What a home gateway may do: publish its home's uplink into its partition, read its home's commands.

    >>> perms = gateway_permissions("home-1")
    >>> perms["publish"]["allow"][0], perms["subscribe"]["allow"]
    ('part.9.ec.v1.home-1.*.*.telemetry', ['ec.v1.home-1.*.*.cmd', '$MQTT.sub.>'])
    """
    check_site_id(site)
    prefix = CONTRACT_PREFIX.replace("/", ".")
    p = partition_of(site, partitions)
    return {
        "publish": {"allow": [f"part.{p}.{prefix}.{site}.*.*.{kind}" for kind in UPLINK]},
        "subscribe": {"allow": [f"{prefix}.{site}.*.*.cmd", "$MQTT.sub.>"]},
    }


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """The accounts of a secured cluster; passwords are plaintext here and hashed when rendered.

    ``gateway_secret`` derives each gateway's password (``ELDERCARE_GATEWAY_SECRET``); ``worker_password`` is
    ``ELDERCARE_NATS_PASSWORD``; ``route_password`` lets the nodes join each other (nothing else may route in).
    """

    sites: tuple[str, ...]
    gateway_secret: str
    worker_user: str
    worker_password: str
    route_password: str
    partitions: int = DEFAULT_PARTITIONS
    bcrypt_cost: int = BCRYPT_COST
    route_user: str = "eldercare-route"
    _hashes: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for secret, what in ((self.gateway_secret, "gateway secret"), (self.worker_password, "worker password")):
            if len(secret) < 16:
                raise ValueError(f"the {what} must be at least 16 characters")
        for site in self.sites:
            check_site_id(site)
        if self.worker_user in self.sites:
            raise ValueError(f"the worker user {self.worker_user!r} collides with a site id")

    def _hash(self, user: str, password: str) -> str:
        """One hash per user per config (the nodes of one cluster share them; bcrypt is slow by design)."""
        if user not in self._hashes:
            self._hashes[user] = bcrypt_hash(password, cost=self.bcrypt_cost)
        return self._hashes[user]

    def authorization(self) -> str:
        """The server's ``authorization`` block (JSON values are valid NATS config)."""
        users = [
            {
                "user": self.worker_user,
                "password": self._hash(self.worker_user, self.worker_password),
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
                    "password": self._hash(site, gateway_password(self.gateway_secret, site)),
                    "allowed_connection_types": ["MQTT"],
                    "permissions": gateway_permissions(site, partitions=self.partitions),
                }
            )
        lines = ",\n    ".join(json.dumps(u) for u in users)
        return f"authorization {{\n  users: [\n    {lines}\n  ]\n}}\n"

    def cluster_authorization(self) -> str:
        """The ``cluster`` block's ``authorization``: only nodes that know the route password may route in."""
        hashed = self._hash(self.route_user, self.route_password)
        return f'  authorization {{ user: "{self.route_user}", password: "{hashed}" }}\n'

    def route_credentials(self) -> str:
        """``user:password@`` for the route URLs (the plaintext lives only in the 0600 config file)."""
        return f"{self.route_user}:{self.route_password}@"


def sites_of(registry: Mapping[str, object]) -> tuple[str, ...]:
    """The site ids of a registry document (docs/registry.md) for :class:`NatsAuth`."""
    entries = registry.get("sites", [])
    return tuple(str(e["site"]) for e in entries if isinstance(e, dict)) if isinstance(entries, list) else ()
