"""A secured cluster on real servers: ZooKeeper ACLs, Redis users, TLS, secrets kept out of logs."""

from __future__ import annotations

import itertools
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
import redis
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import OPEN_ACL_UNSAFE

from prodstate.client import Client, WriteRejected
from prodstate.core.heartbeat import HEARTBEAT_KEY
from prodstate.core.model import UNREACHABLE, Member, RootRecord, Tier
from prodstate.core.rendezvous import choose_parent
from prodstate.redis.control import RedisControl
from prodstate.redis.feed import channel_of
from prodstate.security.credentials import Secret
from prodstate.security.tls import TlsFiles, UntrustedServer
from prodstate.testing import wait_until
from prodstate.testing.cluster import LocalCluster
from prodstate.testing.ports import free_port
from prodstate.testing.redis_server import RedisServer
from prodstate.testing.secure import CertificateAuthority, SecureSetup
from prodstate.zk.client import quiet_log

SESSION = 2.0  # as in conftest.py
HEARTBEAT_CHANNEL = channel_of(HEARTBEAT_KEY)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """ZooKeeper ACLs and Redis users (no TLS): 2 branches, 2 leaves, the tree formed."""
    workdir = tmp_path_factory.mktemp("secured")
    security = SecureSetup(workdir)
    with LocalCluster(
        workdir, branches=2, leaves=2, session_timeout=SESSION, security=security
    ) as cluster:
        cluster.wait_for_tree(timeout=60)
        yield cluster


@pytest.fixture(scope="module")
def tls_secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """As ``secured``, every Redis and ZooKeeper listening only on TLS (ZooKeeper verifying
    its clients' certificates), with certificates for 127.0.0.1."""
    workdir = tmp_path_factory.mktemp("tls-secured")
    security = SecureSetup(workdir, tls=True, zk_tls=True)
    with LocalCluster(
        workdir, branches=2, leaves=2, session_timeout=SESSION, security=security
    ) as cluster:
        cluster.wait_for_tree(timeout=60)
        yield cluster


def _intruder(
    cluster: LocalCluster, kazoo_factory: Callable[..., KazooClient], auth: str | None
) -> KazooClient:
    extra = {"auth_data": [("digest", auth)]} if auth else {}
    return kazoo_factory(cluster.zk_hosts, **extra)


@pytest.mark.parametrize("auth", [None, "ps-agents:wrong-password", "someone:else"])
def test_without_the_agents_credentials_znodes_can_be_read_not_written(
    secured, kazoo_factory, auth
):
    zk = _intruder(secured, kazoo_factory, auth)
    base = f"/prodstate/{secured.cluster}"
    root = RootRecord.from_json(*zk.get(f"{base}/root"))
    assert root.node_id in secured.names("branch")
    assert set(zk.get_children(f"{base}/members/branch")) == set(secured.names("branch"))
    forged = Member("intruder", Tier.BRANCH, "127.0.0.1:1").to_json()
    attempts = {
        "register": lambda: zk.create(f"{base}/members/branch/intruder", forged, ephemeral=True),
        "election": lambda: zk.create(f"{base}/election/n_", b"intruder", sequence=True),
        "epoch": lambda: zk.set(f"{base}/epoch", b'{"epoch": 99}'),
        "root": lambda: zk.delete(f"{base}/root"),
        "member": lambda: zk.delete(f"{base}/members/branch/{root.node_id}"),
        "acl": lambda: zk.set_acls(base, OPEN_ACL_UNSAFE),
        "base": lambda: zk.delete(base, recursive=True),
    }
    for name, attempt in attempts.items():
        with pytest.raises(NoAuthError):
            attempt()
            pytest.fail(f"an unauthenticated client could change {name}")
    assert RootRecord.from_json(*zk.get(f"{base}/root")) == root


def test_replication_authenticates_with_the_replication_user(secured):
    security = secured.security
    for name in secured.names("leaf"):
        with secured.redis[name].client() as conn:
            assert conn.config_get("masteruser")["masteruser"] == security.user("replication").user
            assert conn.info("replication")["master_link_status"] == "up"


def test_a_replica_holding_only_the_leaf_identity_cannot_pose_as_a_branch_at_the_root(secured):
    """A leaf machine holds the replication password. Were it admitted at the root, it could
    connect as a replica announcing a branch's address and acknowledge writes it does not
    keep, and a client would count that as a branch's confirmation. The serving root turns
    the leaf identity off: it cannot even authenticate there, while it still can at a
    branch (the leaves' parents), and the branches replicate with their own identity."""
    security = secured.security
    leaf_user, branch_user = security.user("replication"), security.user("branch_replication")
    root = secured.root_name()
    other = next(b for b in secured.names("branch") if b != root)
    server = secured.redis[root]

    def refused_at_root() -> bool:
        with server.client() as admin:
            return admin.acl_getuser(leaf_user.user)["enabled"] is False

    wait_until(refused_at_root, timeout=10, what="the root to refuse the leaf identity")
    forger = server.client(username=leaf_user.user, password=leaf_user.password)
    with forger, pytest.raises(redis.exceptions.AuthenticationError):
        forger.execute_command("REPLCONF", "listening-port", str(secured.redis[other].port))
    with secured.redis[other].client(
        username=leaf_user.user, password=leaf_user.password
    ) as at_branch:
        assert at_branch.execute_command("PING") in (True, "PONG")
    with secured.redis[other].client() as conn:
        assert conn.config_get("masteruser")["masteruser"] == branch_user.user
        assert conn.info("replication")["master_link_status"] == "up"
    with server.client() as admin:
        replicas = admin.client_list(_type="replica")
    assert replicas and {c["user"] for c in replicas} == {branch_user.user}


def test_a_write_with_the_writer_identity_is_confirmed_and_reaches_every_node(secured):
    security = secured.security
    leaf = secured.redis[secured.names("leaf")[0]]
    with Client(
        secured.zk_hosts,
        secured.cluster,
        local=leaf.address,
        writer=security.user("writer"),
        reader=security.user("reader"),
        timeout=20,
    ) as client:
        assert client.set("secured:key", "v1") == "OK"
        secured.wait_everywhere("secured:key", "v1")
        assert client.get("secured:key") == "v1"


def test_the_reader_reads_and_cannot_write_or_administer(secured):
    leaf = secured.redis[secured.names("leaf")[0]]
    secured.confirmed_write("secured:read", "yes")
    secured.wait_everywhere("secured:read", "yes")
    with leaf.client(**secured.security.client_options("reader")) as reader:
        assert reader.get("secured:read") == "yes"
        for command in (("SET", "x", "1"), ("CONFIG", "SET", "maxmemory", "1"), ("FLUSHALL",)):
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.execute_command(*command)


def test_the_writer_cannot_administer(secured):
    root = secured.redis[secured.root_name()]
    with root.client(**secured.security.client_options("writer")) as writer:
        for command in (("REPLICAOF", "NO", "ONE"), ("CONFIG", "SET", "maxmemory", "1")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                writer.execute_command(*command)


def test_without_credentials_redis_does_nothing(secured):
    root = secured.redis[secured.root_name()]
    with root.client(username=None, password=None) as anonymous:
        for command in (("GET", "secured:read"), ("SET", "x", "1"), ("INFO",)):
            with pytest.raises(redis.exceptions.AuthenticationError):
                anonymous.execute_command(*command)
    wrong = Secret(secured.security.user("writer").user, "wrong")
    client = Client(secured.zk_hosts, secured.cluster, writer=wrong, timeout=2)
    with client, pytest.raises(WriteRejected, match="refused the credentials"):
        client.set("secured:never", "1")
    with root.client() as admin:
        assert admin.get("secured:never") is None


def test_no_secret_reaches_an_agent_log(secured):
    # After the tests above, which made agents register, elect, configure and replicate.
    secrets = secured.security.credentials.secrets()
    assert len(secrets) == 6  # ZooKeeper and five Redis identities
    for name, agent in secured.agents.items():
        text = agent.log_path.read_text(errors="replace")
        assert "configured local Redis" in text
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"agent {name} logged a secret"


def test_a_cluster_listening_only_on_tls_forms_replicates_and_confirms_a_write(tls_secured):
    cluster, security = tls_secured, tls_secured.security
    leaf = cluster.redis[cluster.names("leaf")[0]]
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host=leaf.host, port=leaf.port, socket_timeout=2).ping()
    assert leaf.client().config_get("port")["port"] == "0"
    with Client(
        cluster.zk_hosts,
        cluster.cluster,
        local=leaf.address,
        writer=security.user("writer"),
        reader=security.user("reader"),
        tls=security.tls,
        zk_tls=security.zk_tls,
        timeout=20,
    ) as client:
        assert client.set("tls:key", "v") == "OK"
        cluster.wait_everywhere("tls:key", "v")
        assert client.get("tls:key", max_staleness=10) == "v"

    def resting_on_notifications() -> bool:
        """The leaf's agent follows its heartbeat's keyspace notifications, over TLS."""
        with leaf.client() as conn:
            return conn.pubsub_numsub(HEARTBEAT_CHANNEL) == [(HEARTBEAT_CHANNEL, 1)]

    wait_until(resting_on_notifications, timeout=30, what="the leaf's agent subscribed")


def _master_of(server: RedisServer) -> str:
    """The address ``server`` replicates from ("" if it is a master)."""
    info = server.info("replication")
    return f"{info['master_host']}:{info['master_port']}" if info["role"] == "slave" else ""


def _name(prefix: str, wanted: Callable[[str], bool]) -> str:
    """The first of ``prefix`` 0, 1, 2 ... that is ``wanted``."""
    return next(n for n in (f"{prefix}{i}" for i in itertools.count()) if wanted(n))


@pytest.mark.parametrize("certificate", ["another-name", "client-only"])
def test_a_redis_without_a_server_certificate_for_its_address_is_refused_as_a_parent(
    tls_secured, certificate
):
    """Someone in the path at the address a branch advertises, holding a certificate of the
    cluster's CA made out to another name (or a client's certificate): Redis checks only the
    CA when it connects to its master, so the agent checks the rest itself before REPLICAOF.
    A leaf stays on its parent, and a new leaf picks one whose certificate names it."""
    cluster, security = tls_secured, tls_secured.security
    assert security.ca is not None
    names = {"another-name": ("impostor.example",), "client-only": ("127.0.0.1",)}
    pair = security.ca.issue(
        f"impostor-{certificate}", *names[certificate], server=certificate != "client-only"
    )
    port = free_port()
    impostor = RedisServer(
        cluster.workdir,
        name=f"redis-impostor-{certificate}",
        port=port,
        config=security.redis_config(port, certificate=pair),
        client_options={**security.client_options(), "ssl_cert_reqs": "none"},
    ).start()
    root = cluster.root_name()
    parent = next(n for n in cluster.names("branch") if n != root)
    staying = cluster.names("leaf")[0]
    branch = _name(f"posing-{certificate}-", lambda n: choose_parent(staying, [parent, n]) == n)
    newcomer = _name(
        f"newcomer-{certificate}-", lambda n: choose_parent(n, [parent, branch]) == branch
    )
    try:
        # The agent's own connections (probes, fencing) check the name and purpose too,
        # and any REPLICAOF it gives (a move, or making the previous root a replica).
        with RedisControl(impostor.address, **security.connect_options()) as control:
            assert control.state() == UNREACHABLE
            with pytest.raises(ssl.SSLError):
                control.fence()
        before = _master_of(cluster.redis[staying])
        leaf = RedisControl(cluster.redis[staying].address, **security.connect_options())
        with leaf, pytest.raises(UntrustedServer):
            leaf.replicate(impostor.address)
        assert _master_of(cluster.redis[staying]) == before

        def outcome(leaf: str) -> str | None:
            if _master_of(cluster.redis[leaf]) == impostor.address:
                return "replicated from the impostor"
            log = cluster.agents[leaf].log_path.read_text(errors="replace")
            refused = [line for line in log.splitlines() if "refusing to replicate" in line]
            return "refused" if any(impostor.address in line for line in refused) else None

        cluster.add_node(branch, "branch", advertise=impostor.address)
        assert wait_until(lambda: outcome(staying), timeout=60, what="a move") == "refused"
        cluster.add_node(newcomer, "leaf")
        assert wait_until(lambda: outcome(newcomer), timeout=60, what="a move") == "refused"
        expected = cluster.redis[parent].address
        for leaf in (staying, newcomer):
            wait_until(
                lambda leaf=leaf: (
                    _master_of(cluster.redis[leaf]) == expected
                    and cluster.redis[leaf].info("replication")["master_link_status"] == "up"
                ),
                timeout=30,
                what=f"{leaf} replicating from {parent}",
            )
        assert impostor.info("replication")["connected_slaves"] == 0
    finally:
        impostor.stop()
        for node in (newcomer, branch):
            if node in cluster.tiers:
                cluster.remove_node(node)
    cluster.wait_for_tree(timeout=60)


def _prodstate(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "prodstate", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_zookeeper_serves_only_tls_clients_with_a_certificate_of_the_ca(
    tls_secured, kazoo_factory, tmp_path
):
    cluster, security = tls_secured, tls_secured.security
    assert security.zk_tls is not None
    ca = security.zk_tls.ca_file
    stranger = CertificateAuthority(tmp_path, name="stranger-ca").issue("stranger", "127.0.0.1")
    refused = {
        "a plaintext client": {},
        "a client without a certificate": TlsFiles(ca).kazoo_kwargs(),
        "a certificate of another CA": TlsFiles(ca, *stranger).kazoo_kwargs(),
    }
    for who, options in refused.items():
        zk = KazooClient(hosts=cluster.zk_hosts, timeout=2, logger=quiet_log, **options)
        try:
            with pytest.raises(KazooTimeoutError):
                zk.start(timeout=2)
                pytest.fail(f"ZooKeeper served {who}")
        finally:
            zk.stop()
            zk.close()
    zk = kazoo_factory(cluster.zk_hosts, **security.zk_kwargs())
    assert set(zk.get_children(f"/prodstate/{cluster.cluster}/members/branch")) >= set(
        cluster.names("branch")
    )


def test_the_commands_reach_a_zookeeper_listening_only_on_tls(tls_secured):
    """The agents formed the tree over TLS (the fixture); the commands take --zk-tls-*."""
    cluster, security = tls_secured, tls_secured.security
    where = ["--zk", cluster.zk_hosts, "--cluster", cluster.cluster]
    files = security.agent_args()  # credentials, --tls-* and --zk-tls-*
    status = _prodstate("status", *where, *files)
    assert status.returncode == 0 and "healthy" in status.stdout, status.stdout + status.stderr
    root = _prodstate("root", *where, *files)
    assert root.returncode == 0 and f"node={cluster.root_name()}" in root.stdout, root.stderr
    locks = _prodstate("lock", "list", *where, *files)
    assert locks.returncode == 0, locks.stderr
    pairs = zip(files[::2], files[1::2], strict=True)
    plain = [arg for pair in pairs if not pair[0].startswith("--zk-tls") for arg in pair]
    refused = _prodstate("status", *where, *plain, "--zk-timeout", "2")
    assert refused.returncode == 2 and "cannot connect to ZooKeeper" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_render_and_watch_read_as_the_reader_over_tls(tls_secured, tmp_path):
    """The reader may read and subscribe to the keyspace notifications, and nothing more."""
    cluster, security = tls_secured, tls_secured.security
    where = ["--zk", cluster.zk_hosts, "--cluster", cluster.cluster]
    files = security.agent_args()  # credentials, --tls-* and --zk-tls-*
    pairs = zip(files[::2], files[1::2], strict=True)
    redis_files = [arg for pair in pairs if not pair[0].startswith("--zk-tls") for arg in pair]
    leaf = cluster.redis[cluster.names("leaf")[0]].address
    argv = [sys.executable, "-m", "prodstate", "watch", "--redis", leaf, *redis_files]
    watcher = subprocess.Popen(
        [*argv, "--timeout", "30", "render:tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with cluster.redis[cluster.names("leaf")[0]].client() as admin:
            wait_until(lambda: admin.pubsub_numpat() >= 1)
        written = _prodstate("set", *where, *files, "render:tls", "over-tls")
        assert written.returncode == 0, written.stderr
        out, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert (watcher.returncode, out) == (0, "over-tls\n"), err
    template = tmp_path / "t.j2"
    template.write_text("{{ get('render:tls') }}\n")
    output = tmp_path / "out.conf"
    rendered = _prodstate(
        "render", "--redis", leaf, *redis_files, "--once", "--template", f"{template}:{output}"
    )
    assert rendered.returncode == 0, rendered.stderr
    assert output.read_text() == "over-tls\n"


def test_the_commands_use_the_credentials_file_and_read_zookeeper_without_it(secured):
    creds = ["--credentials-file", str(secured.security.credentials_file)]
    where = ["--zk", secured.zk_hosts, "--cluster", secured.cluster]
    leaf = secured.redis[secured.names("leaf")[0]].address

    written = _prodstate("set", *where, *creds, "cli:key", "v")
    assert (written.returncode, written.stdout.strip()) == (0, "OK"), written.stderr
    secured.wait_everywhere("cli:key", "v")
    read = _prodstate("get", "--redis", leaf, *creds, "cli:key")
    assert (read.returncode, read.stdout.strip()) == (0, "v"), read.stderr
    checked = _prodstate("check", "--redis", leaf, *creds)
    assert checked.returncode == 0 and checked.stdout.startswith("PRODSTATE OK"), checked.stdout
    status = _prodstate("status", *where, *creds)
    assert status.returncode == 0 and "healthy" in status.stdout, status.stdout

    root = _prodstate("root", *where)  # ZooKeeper is world-readable
    assert root.returncode == 0 and f"node={secured.root_name()}" in root.stdout
    refused = _prodstate("get", "--redis", leaf, "cli:key")
    assert refused.returncode == 2 and "authenticat" in refused.stderr.lower()
    assert "Traceback" not in refused.stderr


def test_after_a_failover_the_new_root_refuses_the_leaf_identity_and_the_old_one_admits_it(
    secured,
):
    """Last of the module's tests on ``secured``: it moves the root."""
    leaf_user = secured.security.user("replication").user
    old = secured.inspect().root
    assert old is not None
    secured.agents[old.node_id].kill()
    new = secured.wait_for_new_root(old.epoch)
    secured.agents[old.node_id].start()
    secured.wait_for_tree(timeout=60)

    def enabled(name: str) -> bool:
        with secured.redis[name].client() as admin:
            return admin.acl_getuser(leaf_user)["enabled"]

    wait_until(lambda: not enabled(new.node_id), timeout=10, what="the new root to refuse it")
    wait_until(lambda: enabled(old.node_id), timeout=10, what="the old root to admit it again")
    secured.confirmed_write("secured:after-failover", "1")
    secured.wait_everywhere("secured:after-failover", "1")


def test_a_switchover_over_tls_with_redis_users_costs_no_full_resync(tls_secured):
    """Last of the module's tests on ``tls_secured``: it moves the root. The hand-over's
    ``FAILOVER`` has the old root's Redis connect to the target as a branch, over TLS."""
    cluster, security = tls_secured, tls_secured.security
    cluster.wait_settled()
    old = cluster.inspect().root
    assert old is not None

    def full_syncs() -> int:
        return sum(r.info("stats")["sync_full"] for r in cluster.redis.values())

    before = full_syncs()
    where = ["--zk", cluster.zk_hosts, "--cluster", cluster.cluster]
    done = _prodstate("switchover", *where, *security.agent_args(), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    new = cluster.inspect().root
    assert new is not None and new.node_id != old.node_id and new.epoch == old.epoch + 1
    cluster.wait_settled()
    cluster.confirmed_write("tls:after-switchover", "1")
    cluster.wait_everywhere("tls:after-switchover", "1")
    assert full_syncs() == before
