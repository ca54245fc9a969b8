"""The distributions as a fleet gets them.

The sdist holds every file of the tree (tests, integration, benchmarks, docs). The wheel, installed
(not editable) into a fresh virtualenv with its runtime dependencies alone, at the versions
CI installs and at the oldest ones pyproject.toml allows, imports every module it holds
and runs an agent with the systemd unit's command line against a real ZooKeeper and
redis-server: the agent tells a stand-in for systemd's notify socket READY=1 once it is in
the tree, serves writes as the root, and says STOPPING=1 on SIGTERM.

The installs fetch from the package index (pip's cache makes a second run fast).
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from prodstate.testing import ManagedProcess, RedisServer, ZooKeeperServer, wait_until

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "packaging" / "systemd" / "prodstate-agent.service"
CONSTRAINTS = {"ci": ROOT / "constraints" / "ci.txt", "oldest": ROOT / "constraints" / "oldest.txt"}
#: Files of the tree that the sdist leaves out on purpose.
NOT_IN_SDIST = {".gitignore"}


def run(argv: list[str | Path], **kwargs: object) -> str:
    """Run a command; its stdout, or a failure that shows its output."""
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs
    )  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, and the wheel built from it, as a release builds them (with the build
    backend of this environment, which the test extra pins, instead of a fresh one)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT])
    found = {"sdist": list(out.glob("*.tar.gz")), "wheel": list(out.glob("*.whl"))}
    assert all(len(paths) == 1 for paths in found.values()), found
    return {kind: paths[0] for kind, paths in found.items()}


def test_the_sdist_holds_the_whole_tree(dists):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to compare the sdist with")
    tracked = set(run(["git", "-C", ROOT, "ls-files"]).split("\n")) - {""}
    with tarfile.open(dists["sdist"]) as sdist:
        held = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert "LICENSE" in held and "tests/snapshot_builder.py" in held
    assert sorted(tracked - held - NOT_IN_SDIST) == []


def wheel_modules(wheel: Path) -> list[str]:
    """The dotted name of every Python module in ``wheel`` but ``__main__`` (importing it
    runs the command line: the agent run below runs it)."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".py")]
    dotted = (n[: -len(".py")].replace("/", ".").removesuffix(".__init__") for n in names)
    return sorted(name for name in dotted if not name.endswith(".__main__"))


def install(wheel: Path, venv: Path, constraints: Path) -> Path:
    """A fresh virtualenv at ``venv`` holding ``wheel`` and its runtime dependencies
    (pinned by ``constraints``) and nothing else; its ``bin`` directory."""
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    run([*pip, "install", "-q", "-c", constraints, wheel])
    return venv / "bin"


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One ZooKeeper for the module's agents (each test its own cluster)."""
    server = ZooKeeperServer(tmp_path_factory.mktemp("zk"), tick_time=200).start()
    yield server
    server.stop()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's, and the address to give the agent."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        yield sock, str(path)


def next_notification(sock: socket.socket, agent: ManagedProcess) -> str:
    """The next datagram the agent sends (a failure with its log if it exits first)."""

    def received() -> str | None:
        try:
            return sock.recv(4096).decode()
        except BlockingIOError:
            assert agent.running, f"the agent exited\n{agent.log_tail()}"
            return None

    return wait_until(received, timeout=60, what="a notification from the agent")


def unit_command(bin_dir: Path, config: Path, state_dir: Path) -> list[str]:
    """The ExecStart of the agent's unit, with this venv, config file and state directory."""
    line = next(s for s in UNIT.read_text().splitlines() if s.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    swap = {
        "/opt/prodstate/bin/prodstate": str(bin_dir / "prodstate"),
        "/etc/prodstate/prodstate.toml": str(config),
        "%S/prodstate": str(state_dir),
    }
    assert set(swap) <= set(argv), f"the unit's ExecStart changed: {argv}"
    return [swap.get(arg, arg) for arg in argv]


@pytest.mark.parametrize("versions", sorted(CONSTRAINTS))
def test_the_wheel_installs_imports_and_runs_an_agent(
    versions, dists, zookeeper, tmp_path, notify_socket
):
    bin_dir = install(dists["wheel"], tmp_path / "venv", CONSTRAINTS[versions])
    modules = wheel_modules(dists["wheel"])
    assert "prodstate.cli.agent" in modules and "prodstate.statedb.web" in modules
    script = (
        "import importlib, importlib.util\n"
        "assert importlib.util.find_spec('pytest') is None, 'pytest is installed'\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
    )
    run([bin_dir / "python", "-c", script])

    zk = zookeeper
    redis = RedisServer(tmp_path, name="redis").start()
    sock, address = notify_socket
    config = tmp_path / "prodstate.toml"
    config.write_text(
        f'zk = "{zk.hosts}"\ncluster = "{versions}"\nredis = "{redis.address}"\n'
        '[agent]\ntier = "branch"\nnode-id = "b1"\nsession-timeout = 2\ntick = 0.1\n'
        'metrics-port = 0\nmetrics-host = "127.0.0.1"\nlog-json = true\n'
    )
    argv = unit_command(bin_dir, config, tmp_path / "state")
    agent = ManagedProcess("agent-b1", argv, tmp_path, env={"NOTIFY_SOCKET": address})
    cli = [bin_dir / "prodstate"]
    target = ["--zk", zk.hosts, "--cluster", versions]
    try:
        agent.start()
        assert next_notification(sock, agent).startswith("READY=1\n"), agent.log_tail()
        wait_until(
            lambda: "node=b1" in run([*cli, "root", *target]),
            timeout=30,
            what="b1 to hold the root",
            ignore=(AssertionError,),
        )
        assert run([*cli, "set", *target, "shipped", versions, "--timeout", "10"]).strip()
        assert run([*cli, "get", "shipped", "--redis", redis.address]).strip() == versions
        agent.stop(timeout=30)
        assert sock.recv(4096).decode().startswith("STOPPING=1\n")  # sent before it exited
        assert agent.returncode() == 0, agent.log_tail()
        assert '"message": "agent starting"' in agent.log_path.read_text()
    finally:
        agent.stop()
        redis.stop()
