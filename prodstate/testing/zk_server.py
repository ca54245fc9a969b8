"""ZooKeeper from Debian's jars: a standalone server or a 3-node ensemble, a standalone one
listening on TLS only if asked.

The jars are found under ``/usr/share/java`` (override the folder with
``PRODSTATE_ZOOKEEPER_JARS``, or the whole class path with
``PRODSTATE_ZOOKEEPER_CLASSPATH``); ``java`` comes from ``PRODSTATE_JAVA`` or
the PATH. ``tick_time`` (ms) bounds the sessions a client may negotiate to
between 2 and 20 ticks, so tests use short ticks for short sessions. An ensemble may add
observers: servers that take sessions and serve reads without voting.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

from kazoo.client import KazooClient

from prodstate.security.tls import TlsFiles
from prodstate.testing.ports import free_ports
from prodstate.testing.process import ManagedProcess
from prodstate.testing.wait import wait_until

MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
SERVING_MODES = ("standalone", "leader", "follower", "observer")
#: The JVM options of a test server: quick to start, small (``jvm_options`` replaces them).
QUICK_JVM = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def zookeeper_classpath() -> str:
    """The class path that runs Debian's ZooKeeper server, logging to stdout."""
    explicit = os.environ.get("PRODSTATE_ZOOKEEPER_CLASSPATH")
    if explicit:
        return explicit
    jars = Path(os.environ.get("PRODSTATE_ZOOKEEPER_JARS", "/usr/share/java"))
    main_jar = jars / "zookeeper.jar"
    if not main_jar.exists():
        raise FileNotFoundError(
            f"{main_jar} not found: install Debian's zookeeper package "
            "or set PRODSTATE_ZOOKEEPER_JARS / PRODSTATE_ZOOKEEPER_CLASSPATH"
        )
    # zookeeper.jar's manifest names its dependencies but netty-codec, which its TLS port
    # needs; slf4j-simple gives it a log.
    extra = [jars / "netty-codec.jar", jars / "slf4j-simple.jar"]
    parts = [main_jar] + [p for p in extra if p.exists()]
    return os.pathsep.join(str(p) for p in parts)


def four_letter_word(
    host: str, port: int, word: str, timeout: float = 2.0, tls: TlsFiles | None = None
) -> str:
    """Send a ZooKeeper four-letter command (``srvr``, ``mntr``, ...) and return the reply
    (over TLS with ``tls``)."""
    with socket.create_connection((host, port), timeout=timeout) as plain:
        sock = tls.context().wrap_socket(plain, server_hostname=host) if tls else plain
        with sock:
            sock.sendall(word.encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


class ZooKeeperServer(ManagedProcess):
    """One ZooKeeper server: standalone, or a member of a ZooKeeperEnsemble."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "zookeeper",
        tick_time: int = 200,
        host: str = "127.0.0.1",
        client_port: int | None = None,
        server_id: int | None = None,
        peers: dict[int, tuple[int, int]] | None = None,
        observers: Sequence[int] = (),
        heap_mb: int = 192,
        tls: TlsFiles | None = None,
        client_auth: str = "need",
        settings: dict[str, object] | None = None,
        jvm_options: Sequence[str] = QUICK_JVM,
    ) -> None:
        """With ``tls`` (a CA, and a certificate valid for ``host`` as a server and as a
        client), the client port serves TLS only, trusting clients of that CA; with
        ``client_auth`` ZooKeeper's ``ssl.clientAuth``: ``need`` (a client certificate of
        the CA), ``want`` or ``none``. The harness's four-letter words use the same pair.
        ``observers``: the ids among ``peers`` that observe (this one too, if it is one);
        ``settings`` are added to (or replace) zoo.cfg's; ``jvm_options`` go to java."""
        self.host = host
        self.tls = tls
        self.client_port = client_port or free_ports(1, host)[0]
        self.tick_time = tick_time
        workdir = Path(workdir) / name
        data_dir = workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        port_key = "clientPort" if tls is None else "secureClientPort"
        config: dict[str, object] = {
            "tickTime": tick_time,
            "initLimit": 20,
            "syncLimit": 10,
            "dataDir": data_dir,
            port_key: self.client_port,
            f"{port_key}Address": host,
            **(_tls_settings(tls, client_auth, workdir) if tls else {}),
            "maxClientCnxns": 0,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "preAllocSize": 1024,
            "snapCount": 10000,
            "reconfigEnabled": "false",
        }
        self.observer = server_id is not None and server_id in observers
        if self.observer:
            config["peerType"] = "observer"
        config.update(settings or {})
        lines = [f"{k}={v}" for k, v in config.items()]
        if peers:
            if server_id is None:
                raise ValueError("an ensemble member needs a server_id")
            (data_dir / "myid").write_text(f"{server_id}\n")
            lines += [
                f"server.{sid}={host}:{quorum}:{election}"
                + (":observer" if sid in observers else "")
                for sid, (quorum, election) in sorted(peers.items())
            ]
        self.config_path = workdir / "zoo.cfg"
        self.config_path.write_text("\n".join(lines) + "\n")
        argv = [
            os.environ.get("PRODSTATE_JAVA", "java"),
            f"-Xmx{heap_mb}m",
            *jvm_options,
            "-Dzookeeper.forceSync=no",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
            "-cp",
            zookeeper_classpath(),
            MAIN_CLASS,
            str(self.config_path),
        ]
        super().__init__(name, argv, workdir, ready=self._is_serving, ready_timeout=60)

    @property
    def hosts(self) -> str:
        """``host:port`` for a ZooKeeper client."""
        return f"{self.host}:{self.client_port}"

    def four_letter_word(self, word: str) -> str:
        """Run a four-letter command against this server."""
        return four_letter_word(self.host, self.client_port, word, tls=self.tls)

    def mode(self) -> str | None:
        """``standalone``, ``leader``, ``follower``, or None while not serving."""
        try:
            reply = self.four_letter_word("srvr")
        except OSError:
            return None
        for line in reply.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def _is_serving(self) -> bool:
        return self.mode() in SERVING_MODES


def _tls_settings(tls: TlsFiles, client_auth: str, workdir: Path) -> dict[str, object]:
    """zoo.cfg lines of a TLS client port (Netty's, with PEM key and trust stores)."""
    if not (tls.cert_file and tls.key_file):
        raise ValueError("a TLS ZooKeeper needs a certificate and its key")
    store = workdir / "keystore.pem"  # ZooKeeper reads the key and its chain from one file
    store.touch(mode=0o600)
    store.write_text(Path(tls.key_file).read_text() + Path(tls.cert_file).read_text())
    return {
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": store,
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": tls.ca_file,
        "ssl.trustStore.type": "PEM",
        "ssl.clientAuth": client_auth,
    }


class ZooKeeperEnsemble:
    """A quorum of ZooKeeper servers on loopback (3 by default), and ``observers`` more that
    take sessions and serve reads without voting (ids after the voters')."""

    def __init__(
        self,
        workdir: Path,
        *,
        size: int = 3,
        tick_time: int = 200,
        observers: int = 0,
        heap_mb: int = 192,
        settings: dict[str, object] | None = None,
        jvm_options: Sequence[str] = QUICK_JVM,
    ) -> None:
        total = size + observers
        ports = free_ports(3 * total)
        ids = range(1, total + 1)
        peers = {sid: (ports[3 * i + 1], ports[3 * i + 2]) for i, sid in enumerate(ids)}
        observing = list(ids)[size:]
        self.servers = [
            ZooKeeperServer(
                workdir,
                name=f"zookeeper{sid}",
                tick_time=tick_time,
                client_port=ports[3 * i],
                server_id=sid,
                peers=peers,
                observers=observing,
                heap_mb=heap_mb,
                settings=settings,
                jvm_options=jvm_options,
            )
            for i, sid in enumerate(ids)
        ]

    @property
    def voters(self) -> list[ZooKeeperServer]:
        """The members that vote (the quorum is a majority of them)."""
        return [s for s in self.servers if not s.observer]

    @property
    def observers(self) -> list[ZooKeeperServer]:
        """The members that observe."""
        return [s for s in self.servers if s.observer]

    def __iter__(self) -> Iterator[ZooKeeperServer]:
        return iter(self.servers)

    @property
    def hosts(self) -> str:
        """The connection string naming every member."""
        return ",".join(s.hosts for s in self.servers)

    def start(self) -> ZooKeeperEnsemble:
        """Start every member, then wait until each serves as leader or follower."""
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            server.wait_ready()
        return self

    def stop(self) -> None:
        """Stop every member."""
        for server in self.servers:
            server.stop()

    def leader(self, timeout: float = 30.0) -> ZooKeeperServer:
        """The member that currently leads (waits for an election to finish)."""
        return wait_until(
            lambda: next((s for s in self.servers if s.running and s.mode() == "leader"), None),
            timeout=timeout,
            what="an ensemble leader",
        )

    @staticmethod
    def hosts_of(servers: Sequence[ZooKeeperServer]) -> str:
        """The connection string naming ``servers``."""
        return ",".join(s.hosts for s in servers)

    def serving(self) -> Sequence[ZooKeeperServer]:
        """Members currently serving requests."""
        return [s for s in self.servers if s.running and s.mode() in SERVING_MODES]


def expire_session(client: KazooClient, hosts: str, timeout: float = 10.0) -> None:
    """Expire ``client``'s session on the server side.

    A second handle attaches to the victim's session (same id and password) and
    closes it: the server ends the session and deletes its ephemeral nodes. The
    victim learns it (state LOST) when it next talks to the server.
    """
    session_id, password = client.client_id
    tls = {  # the victim's TLS settings, if any
        name: getattr(client, name)
        for name in ("use_ssl", "ca", "certfile", "keyfile", "verify_certs", "check_hostname")
    }
    thief = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=timeout, **tls)
    thief.start(timeout=timeout)
    try:
        if thief.client_id[0] != session_id:
            raise RuntimeError(
                "the second handle got a new session: the victim's had already ended"
            )
    finally:
        thief.stop()
        thief.close()
