"""The TLS check an agent makes before a Redis replicates from an address (against a local
TLS server presenting certificates of a throw-away CA)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from prodstate.cli import cli
from prodstate.security.tls import ServerChecks, TlsFiles, UntrustedServer, check_server
from prodstate.testing.ports import free_port
from prodstate.testing.secure import CertificateAuthority


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def client(ca: CertificateAuthority) -> TlsFiles:
    return TlsFiles(ca.ca_file, *ca.issue("client", "client.example", server=False))


class TlsServer:
    """Accepts TLS connections on loopback with one certificate, counting handshakes."""

    def __init__(self, certificate: tuple[str, str], port: int = 0) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*certificate)
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def address(self, host: str = "127.0.0.1") -> str:
        return f"{host}:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            try:
                self.context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()  # the client refused the certificate

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() under way (Linux)
        self.sock.close()
        self._thread.join(timeout=5)


@contextmanager
def serving(certificate: tuple[str, str], port: int = 0) -> Iterator[TlsServer]:
    server = TlsServer(certificate, port)
    try:
        yield server
    finally:
        server.close()


def test_a_certificate_for_the_address_passes(ca, client):
    with serving(ca.issue("good", "127.0.0.1", "localhost")) as server:
        check_server(server.address(), client)
        check_server(server.address("localhost"), client)


@pytest.mark.parametrize(
    ("identities", "options", "why"),
    [
        (("impostor.example",), {}, "not valid for '127.0.0.1'"),
        (("localhost",), {}, "not valid for '127.0.0.1'"),  # an IP needs an IP entry
        (("127.0.0.1",), {"server": False}, "purpose"),  # a client's certificate
    ],
    ids=["another-name", "dns-name-for-an-ip", "client-only"],
)
def test_a_certificate_not_valid_for_a_server_at_the_address_is_refused(
    ca, client, identities, options, why
):
    certificate = ca.issue("bad", *identities, **options)
    with serving(certificate) as server, pytest.raises(UntrustedServer, match=why):
        check_server(server.address(), client)


def test_a_certificate_of_another_ca_is_refused(ca, client, tmp_path):
    other = CertificateAuthority(tmp_path, name="other-ca")
    certificate = other.issue("stranger", "127.0.0.1")
    with serving(certificate) as server, pytest.raises(UntrustedServer, match="issuer"):
        check_server(server.address(), client)


def test_nothing_listening_is_unreachable_not_untrusted(client):
    with pytest.raises(OSError) as raised:
        check_server(f"127.0.0.1:{free_port()}", client, timeout=0.5)
    assert not isinstance(raised.value, UntrustedServer)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_refused_address_is_refused_without_a_handshake_for_a_doubling_while(ca, client):
    clock = Clock()
    checks = ServerChecks(client, first=1.0, cap=3.0, clock=clock)
    with serving(ca.issue("bad", "impostor.example")) as server:
        address = server.address()
        waits = []
        for _ in range(4):
            with pytest.raises(UntrustedServer, match="refused"):
                checks.check(address)
            assert checks.refused(clock.now) == {address}
            before = server.accepted
            with pytest.raises(UntrustedServer, match="checked again in"):
                checks.check(address)
            assert server.accepted == before  # no handshake meanwhile
            until = clock.now
            while address in checks.refused(until):
                until += 0.5
            waits.append(until - clock.now)
            clock.now = until
        assert waits == [1.0, 2.0, 3.0, 3.0]


def test_a_passing_check_forgets_the_refusal_and_no_tls_checks_nothing(ca, client):
    clock = Clock()
    checks = ServerChecks(client, clock=clock)
    with serving(ca.issue("bad", "impostor.example")) as server:
        with pytest.raises(UntrustedServer):
            checks.check(server.address())
        port = server.port
    clock.now += 1.0
    # The address now presents a certificate for its name.
    with serving(ca.issue("fixed", "127.0.0.1"), port) as server:
        checks.check(server.address())
        assert checks.refused(clock.now) == frozenset()
    ServerChecks(None).check(f"127.0.0.1:{free_port()}")  # plain Redis: nothing to check


# --- the --zk-tls-* options ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("garbage") / "garbage.pem"
    path.write_text("not a certificate\n")
    return str(path)


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ({"cert": "cert", "key": "key"}, "TLS needs a CA file (--zk-tls-ca-file)"),
        ({"ca": "ca", "cert": "cert"}, "--zk-tls-cert-file and --zk-tls-key-file go together"),
        ({"ca": "missing"}, "cannot read TLS file"),
        ({"ca": "garbage"}, "holds no PEM certificate (--zk-tls-ca-file)"),
        ({"ca": "ca", "cert": "cert", "key": "garbage"}, "are not a PEM certificate and its"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["agent", "--tier", "leaf", "--redis", "127.0.0.1:1"],
        ["root"],
        ["lock", "acquire", "web", "--reason", "r"],
    ],
    ids=lambda c: c[0],
)
def test_bad_zookeeper_tls_options_are_one_line_usage_errors(
    ca, client, garbage, tmp_path, given, error, command
):
    files = {
        "ca": ca.ca_file,
        "cert": client.cert_file,
        "key": client.key_file,
        "garbage": garbage,
        "missing": str(tmp_path / "missing.pem"),
    }
    args = [*command, "--zk", "127.0.0.1:1", "--cluster", "c"]
    for kind, name in given.items():
        args += [f"--zk-tls-{kind}-file", files[name]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and error in errors[0], result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
