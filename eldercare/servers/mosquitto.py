"""Debian mosquitto as a child process, with password files and ACLs (no anonymous access).

Two listeners, each with its own accounts (``per_listener_settings true``):

* the **gateway listener** (:attr:`Mosquitto.port`) knows only home-gateway accounts and replaces every
  client id with the account's username (``use_username_as_clientid``), so a gateway cannot connect under
  the backend's client id, kick it off or resume its persistent session (issue 13, R1);
* the **backend listener** (:attr:`Mosquitto.backend_port`) knows only the backend account, which chooses its
  own client ids (one per process of a share group, one for the command publisher).

Client ids share one namespace across listeners: a gateway's id is its site id, so the backend's ids must never
be a provisioned site id (:func:`gateway.provisioning.check_site_id` reserves the ``eldercare`` prefix).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eldercare.certs import TlsFiles
from eldercare.servers._child import ChildServer, ensure_package, free_port, port_open
from eldercare.servers.nats import MQTT_MAX_ACK_PENDING, MQTT_SESSION_ACK_PENDING
from gateway.models import Z2M_PREFIX
from gateway.provisioning import check_site_id
from ingest.partitions import Z2M_COMMANDS, Z2M_UPLINKS

MESSAGE_SIZE_LIMIT: Final = 64 * 1024
"""Largest PUBLISH payload the broker forwards (bytes); the contract allows 4 KiB, the backend dead-letters more.

Bigger payloads are acknowledged and discarded by the broker (``message_size_limit``), so a gateway that keeps
retrying one never loops; a packet bigger than this plus :data:`PACKET_HEADROOM` disconnects the client before the
broker buffers it (``max_packet_size``), so nobody can make it (or the backend) hold 100 MB messages."""

PACKET_HEADROOM: Final = 1024
"""Topic, properties and fixed header on top of the payload limit."""

AUTOSAVE_CHANGES: Final = 1000
"""Changes (queued or retained messages, subscriptions) after which the broker saves its database.

At most this many minus one acknowledged messages are lost by a broker kill -9. Each save rewrites the whole
database, which holds the backend's unacknowledged window (up to 10,000 messages) and any queue, so smaller values
cost ingest throughput (docs/benchmarks.md: 100 halved it, 1 collapsed it during a backend restart)."""


UPLINK_KINDS: Final = ("telemetry", "event", "status")
"""The topics a gateway may publish (its ACL): the bridge forwards exactly these, never ``cmd``."""


@dataclass(frozen=True, slots=True)
class NatsBridge:
    """A ``connection`` bridge from this (edge) broker into the MQTT listeners of a NATS cluster (docs/scale-out.md).

    Uplinks (``ec/v1/{site}/+/+/{telemetry,event,status}``) go ``out`` at QoS 1; downlinks come back ``in`` from
    ``ec/v1/{site}/+/+/cmd`` through one QoS 1 subscription (the cluster's partition mapping covers only the uplink
    types, ``ingest.partitions.nats_mappings``, so commands keep their topic). Only uplink kinds go out, so a command
    that came in can never be sent back out (no loop by construction).

    ``addresses`` are the nodes' MQTT listeners as ``host:port``; the bridge keeps one connection and moves to the
    next address when it drops (``round_robin``: it does not fall back to the first one while another works).
    ``cleansession false`` keeps the bridge's queue here and its subscriptions on NATS across reconnects.

    On a cluster with accounts, ``username``/``password`` are the bridge's own NATS user
    (``ELDERCARE_NATS_BRIDGE_USER``, :class:`ingest.nats_auth.NatsAuth`), which may read only its homes' commands:
    ``sites`` then names them and the bridge subscribes to each home's commands (a wildcard over every home would be
    refused). ``cafile``: the CA of the nodes' certificates; the bridge then speaks TLS and checks the node's
    certificate and host name.
    """

    addresses: Sequence[str]
    name: str = "nats"
    client_id: str = "eldercare-bridge"
    username: str = ""
    password: str = ""
    cafile: str = ""
    sites: Sequence[str] = ()
    keepalive_s: int = 10
    restart_base_s: int = 1
    restart_cap_s: int = 5

    def __post_init__(self) -> None:
        for site in self.sites:
            check_site_id(site)
        most = MQTT_SESSION_ACK_PENDING // MQTT_MAX_ACK_PENDING
        if len(self.sites) > most:
            # nats-server would refuse the subscriptions past that (SUBACK 0x80, which mosquitto ignores): those
            # homes' commands would go nowhere, silently.
            raise ValueError(
                f"a bridge carries at most {most} homes' commands ({len(self.sites)} given): one QoS 1 subscription"
                f" per home, {MQTT_MAX_ACK_PENDING} unacknowledged each, {MQTT_SESSION_ACK_PENDING} per session;"
                " split the homes over several edge brokers (docs/scale-out.md)"
            )

    def lines(self) -> list[str]:
        """The bridge section of mosquitto.conf."""
        if not self.addresses:
            raise ValueError("a bridge needs at least one address")
        out = [
            "",
            "# Bridge into the NATS cluster's MQTT listeners (docs/scale-out.md).",
            f"connection {self.name}",
            f"addresses {' '.join(self.addresses)}",
            "round_robin true",
            "bridge_protocol_version mqttv311",
            # nats-server refuses mosquitto's private bridge protocol level (0x84).
            "try_private false",
            "cleansession false",
            f"remote_clientid {self.client_id}",
            f"local_clientid {self.client_id}-local",
            f"keepalive_interval {self.keepalive_s}",
            f"restart_timeout {self.restart_base_s} {self.restart_cap_s}",
            "start_type automatic",
            # Only uplinks go out and they were never subscribed on NATS: nothing to unsubscribe on each connect.
            "bridge_attempt_unsubscribe false",
            # The connection state goes to this broker's $SYS only: NATS has no use for it.
            "notifications true",
            "notifications_local_only true",
        ]
        if self.username:
            out += [f"remote_username {self.username}", f"remote_password {self.password}"]
        if self.cafile:
            # Verifies the node's certificate and that it names the address dialled (bridge_insecure stays false).
            out += [f"bridge_cafile {self.cafile}", "bridge_tls_version tlsv1.2"]
        out += [f"topic +/+/+/{kind} out 1 ec/v1/ ec/v1/" for kind in UPLINK_KINDS]
        if self.sites:
            # Commands: one QoS 1 subscription (a JetStream consumer on $MQTT_msgs) per home, all its account may read.
            return [*out, *(f"topic {site}/+/+/cmd in 1 ec/v1/ ec/v1/" for site in sorted(set(self.sites)))]
        # Commands: one QoS 1 subscription for every home behind this broker (a cluster without accounts).
        return [*out, "topic +/+/+/cmd in 1 ec/v1/ ec/v1/"]


@dataclass(frozen=True, slots=True)
class Z2mHomeBridge:
    """A Zigbee2MQTT home's own mosquitto, bridged into the NATS cluster (docs/scale-out.md, "Zigbee2MQTT homes").

    Z2M publishes at QoS 0 (``bridge/devices`` and ``bridge/state`` always, device states unless configured), and
    nats-server 2.9.10 stores only QoS 1 publishes in ``$MQTT_msgs``, the workers' only source: straight to a node,
    those messages never reach a worker (tests/scale/test_scale_z2m.py). Through this bridge Z2M keeps its default
    base topic ``zigbee2mqtt`` on the home's broker; ``upgrade_outgoing_qos`` (global in mosquitto 2.0) sends every
    uplink out at the bridge topic's QoS 1, under ``z2m/{site}/``. Out go exactly the shapes the cluster maps
    (:data:`ingest.partitions.Z2M_UPLINKS`); commands come in on their own patterns, which no out pattern matches,
    so nothing loops (nats-server refuses mosquitto's loop guard, ``try_private``). User and client id on the
    cluster are the site id, as for any gateway account.
    """

    site: str
    addresses: Sequence[str]
    password: str = ""
    local_prefix: str = "zigbee2mqtt/"
    name: str = "cluster"

    def lines(self) -> list[str]:
        """The global option and the bridge section for the home's mosquitto.conf."""
        if not self.addresses:
            raise ValueError("a bridge needs at least one address")
        remote = f"{Z2M_PREFIX}/{self.site}/"
        out = [
            "# Every message to a subscriber (the bridge) at the subscription's QoS: Z2M's QoS 0 goes out at QoS 1.",
            "upgrade_outgoing_qos true",
            "",
            f"connection {self.name}",
            f"addresses {' '.join(self.addresses)}",
            "round_robin true",
            "bridge_protocol_version mqttv311",
            "try_private false",
            "cleansession false",
            f"remote_clientid {self.site}",
            f"local_clientid {self.site}-bridge",
            "bridge_attempt_unsubscribe false",
            "notifications true",
            "notifications_local_only true",
        ]
        if self.password:
            out += [f"remote_username {self.site}", f"remote_password {self.password}"]
        out += [
            f"topic {shape.replace('.', '/').replace('*', '+')} out 1 {self.local_prefix} {remote}"
            for shape in Z2M_UPLINKS
        ]
        return [*out, *(f"topic {c} in 1 {self.local_prefix} {remote}" for c in Z2M_COMMANDS)]


def global_lines(
    *,
    autosave_changes: int = AUTOSAVE_CHANGES,
    max_inflight: int = 10_000,
    max_queued: int = 2_000_000,
    tcp_nodelay: bool = True,
    message_size_limit: int = MESSAGE_SIZE_LIMIT,
) -> list[str]:
    """The broker-wide options of every eldercare mosquitto: the test stack's and production's (one source)."""
    return [
        # Accounts and ACLs per listener: gateways cannot even log in on the backend's listener.
        "per_listener_settings true",
        "persistence true",
        # Save after every change (queued message, retained message, subscription) instead of every N seconds: a
        # broker kill -9 then loses at most what arrived since the last save finished (mosquitto sends PUBACK before
        # it saves; docs/storage.md states the window).
        "autosave_on_changes true",
        f"autosave_interval {autosave_changes}",
        # The backend acknowledges QoS 1 messages only once they are durable, in batches: the broker must allow more
        # unacknowledged messages in flight than one batch.
        f"max_inflight_messages {max_inflight}",
        f"max_queued_messages {max_queued}",
        "max_queued_bytes 0",
        # Send each message at once (no Nagle): the backend acknowledges only once durable, so with Nagle a
        # life-safety message waited in the broker's socket for the backend's delayed TCP ACK.
        f"set_tcp_nodelay {'true' if tcp_nodelay else 'false'}",
        f"message_size_limit {message_size_limit}",
        f"max_packet_size {message_size_limit + PACKET_HEADROOM}",
        "connection_messages true",
    ]


def _listener(port: int, host: str) -> str:
    return f"listener {port} {host}" if host else f"listener {port}"


def gateway_listener_lines(*, port: int, host: str, passwd: Path, acl: Path) -> list[str]:
    """A plain listener for home gateways: their accounts only, and the client id is always the username."""
    return [
        "",
        "# Home gateways: the client id is always the username (site id), so no gateway can take",
        "# another client's session or kick it off.",
        _listener(port, host),
        "use_username_as_clientid true",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
    ]


def backend_listener_lines(*, port: int, host: str, passwd: Path, acl: Path) -> list[str]:
    """The backend's listener: the backend account only (its own client ids: ingest workers, command publisher)."""
    return [
        "",
        "# The backend only (its own client ids: ingest workers, command publisher).",
        _listener(port, host),
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
    ]


def tls_listener_lines(
    *,
    port: int,
    host: str,
    cafile: Path,
    certfile: Path,
    keyfile: Path,
    require_client_cert: bool,
    passwd: Path,
    acl: Path,
) -> list[str]:
    """A TLS listener for home gateways (the gateways' accounts and ACL); client certificates optional."""
    return [
        "",
        "# Home gateways over TLS: the gateways' accounts; the client id is always the username.",
        _listener(port, host),
        f"cafile {cafile}",
        f"certfile {certfile}",
        f"keyfile {keyfile}",
        "tls_version tlsv1.2",
        f"require_certificate {'true' if require_client_cert else 'false'}",
        "use_username_as_clientid true",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
    ]


def write_account_file(path: Path, text: str, *, mode: int = 0o600, gid: int | None = None) -> None:
    """Replace a password file or ACL in one step (the broker never reads half a file), private from the start.

    ``gid``: owned by root and that group (production, run as root: the broker's group reads it).
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    if gid is not None:
        os.chown(tmp, 0, gid)
    tmp.replace(path)


BROKER_DIR: Final = Path("/etc/mosquitto/eldercare")
"""Production: the accounts and ACLs ``eldercare broker provision`` writes (root:mosquitto, 0640)."""
CERTS_DIR: Final = Path("/etc/mosquitto/certs")
"""Production: the broker's TLS certificate and key (``eldercare certs``); the CA key does not belong here."""


def production_conf(
    *,
    accounts_dir: Path = BROKER_DIR,
    certs_dir: Path = CERTS_DIR,
    backend_host: str = "127.0.0.1",
    backend_port: int = 1883,
    gateway_host: str = "",
    gateway_port: int = 8883,
    require_client_cert: bool = False,
) -> str:
    """``/etc/mosquitto/conf.d/eldercare.conf`` for Debian's mosquitto (``eldercare broker config`` prints it).

    Rendered by the same functions as the test stack's configuration, so production runs the broker the tests
    attack: per-listener accounts, the gateways' client id forced to their username, the backend's listener
    private, message and packet limits, saves on changes. Debian's own ``mosquitto.conf`` sets ``pid_file``,
    ``persistence_location`` and ``log_dest`` and includes ``conf.d`` before any listener.
    """
    return "\n".join(
        [
            "# /etc/mosquitto/conf.d/eldercare.conf: generated by `eldercare broker config`; do not edit by hand.",
            "# Accounts and ACLs are written by `eldercare broker provision` (docs/operations.md).",
            *global_lines(),
            *backend_listener_lines(
                port=backend_port,
                host=backend_host,
                passwd=accounts_dir / "backend.passwd",
                acl=accounts_dir / "backend.acl",
            ),
            *tls_listener_lines(
                port=gateway_port,
                host=gateway_host,
                cafile=certs_dir / "ca.crt",
                certfile=certs_dir / "server.crt",
                keyfile=certs_dir / "server.key",
                require_client_cert=require_client_cert,
                passwd=accounts_dir / "gateways.passwd",
                acl=accounts_dir / "gateways.acl",
            ),
            "",
        ]
    )


class Mosquitto(ChildServer):
    """A mosquitto broker on 127.0.0.1 with authentication, ACLs and persistence in ``data_dir``.

    ``passwd``/``acl`` are the gateway listener's files, ``backend_passwd``/``backend_acl`` the backend
    listener's. ``autosave_changes`` is mosquitto's ``autosave_interval`` with ``autosave_on_changes true``: the
    in-memory database is written to disk once more than that many messages were queued or retained (or
    subscriptions changed) since the last save (docs/storage.md, "What survives what").
    """

    name = "mosquitto"

    def __init__(
        self,
        *,
        data_dir: Path,
        passwd: str,
        acl: str,
        backend_passwd: str = "",
        backend_acl: str = "",
        port: int = 0,
        backend_port: int = 0,
        max_inflight: int = 10_000,
        max_queued: int = 2_000_000,
        autosave_changes: int = AUTOSAVE_CHANGES,
        message_size_limit: int = MESSAGE_SIZE_LIMIT,
        tls: TlsFiles | None = None,
        tls_port: int = 0,
        require_client_cert: bool = False,
        bridge: NatsBridge | None = None,
        tcp_nodelay: bool = True,
    ) -> None:
        super().__init__(data_dir=data_dir)
        if autosave_changes < 1:
            raise ValueError("autosave_changes must be at least 1")
        self.port = port or free_port()
        self.backend_port = backend_port or free_port()
        self.passwd = passwd
        self.acl = acl
        self.backend_passwd = backend_passwd
        self.backend_acl = backend_acl
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.autosave_changes = autosave_changes
        self.message_size_limit = message_size_limit
        self.tls = tls
        """Certificates of an extra TLS listener (MQTT over TLS, 8883 in production) beside the plain one."""
        self.tls_port = (tls_port or free_port()) if tls is not None else 0
        self.require_client_cert = require_client_cert
        self.bridge = bridge
        """Edge mode: forward the gateways' uplinks to a NATS cluster (clustered mode); ``None`` by default."""
        self.tcp_nodelay = tcp_nodelay
        """Send every packet at once (``set_tcp_nodelay true``); False keeps mosquitto's default, Nagle on."""
        self.binary = ensure_package("/usr/sbin/mosquitto", "mosquitto")

    @property
    def conf_path(self) -> Path:
        """The generated mosquitto.conf."""
        return self.data_dir / "mosquitto.conf"

    @property
    def persistence_file(self) -> Path:
        """The broker's saved in-memory database (sessions, queued messages, retained messages)."""
        return self.data_dir / "persist" / "mosquitto.db"

    def _write_secrets(self) -> None:
        files = (
            ("passwd", self.passwd),
            ("acl", self.acl),
            ("backend.passwd", self.backend_passwd),
            ("backend.acl", self.backend_acl),
        )
        for name, text in files:
            write_account_file(self.data_dir / name, text)

    def prepare(self) -> None:
        """Write config, password files and ACLs."""
        persist = self.data_dir / "persist"
        persist.mkdir(exist_ok=True)
        self._write_secrets()
        # A broker started by root would drop to the 'mosquitto' user and could not read the private
        # (0700) data directory this launcher creates; the launcher's own user runs it instead.
        # Production deployments use the distribution's service unit and user (docs/operations.md).
        run_as = "user root" if os.geteuid() == 0 else "# running as the launcher's user"
        d = self.data_dir
        tls = (
            []
            if self.tls is None
            else tls_listener_lines(
                port=self.tls_port,
                host="127.0.0.1",
                cafile=self.tls.ca,
                certfile=self.tls.cert,
                keyfile=self.tls.key,
                require_client_cert=self.require_client_cert,
                passwd=d / "passwd",
                acl=d / "acl",
            )
        )
        self.conf_path.write_text(
            "\n".join(
                [
                    "# Generated by eldercare.",
                    run_as,
                    *global_lines(
                        autosave_changes=self.autosave_changes,
                        max_inflight=self.max_inflight,
                        max_queued=self.max_queued,
                        tcp_nodelay=self.tcp_nodelay,
                        message_size_limit=self.message_size_limit,
                    ),
                    f"persistence_location {persist}/",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    *gateway_listener_lines(port=self.port, host="127.0.0.1", passwd=d / "passwd", acl=d / "acl"),
                    *backend_listener_lines(
                        port=self.backend_port, host="127.0.0.1", passwd=d / "backend.passwd", acl=d / "backend.acl"
                    ),
                    *tls,
                    *(self.bridge.lines() if self.bridge is not None else []),
                    "",
                ]
            )
        )
        if self.bridge is not None and self.bridge.password:
            os.chmod(self.conf_path, 0o600)  # it holds the bridge's NATS password

    def command(self) -> Sequence[str]:
        """Run mosquitto in the foreground with the generated config."""
        return [self.binary, "-c", str(self.conf_path)]

    def ready(self) -> bool:
        """Ready once every listener accepts TCP connections."""
        return port_open(self.port) and port_open(self.backend_port) and (self.tls is None or port_open(self.tls_port))

    def reload(
        self, *, passwd: str, acl: str, backend_passwd: str | None = None, backend_acl: str | None = None
    ) -> None:
        """Replace the password files and ACLs and make the running broker re-read them (SIGHUP)."""
        self.passwd, self.acl = passwd, acl
        if backend_passwd is not None:
            self.backend_passwd = backend_passwd
        if backend_acl is not None:
            self.backend_acl = backend_acl
        self._write_secrets()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
