"""``prodstate api`` refuses to start, in one line and exit 2, when it could not serve
anyone: no tokens, HTTPS files that do not go together, an address it cannot bind."""

from __future__ import annotations

import socket
from pathlib import Path

from click.testing import CliRunner

from prodstate.cli import load_command

TOKENS = '[api.tokens.shop]\ntoken = "t0k3n-of-twenty-chars"\nrights = ["read"]\n'


def run(tmp_path: Path, credentials: str, *args: str):
    path = tmp_path / "credentials.toml"
    path.write_text(credentials)
    path.chmod(0o600)
    argv = ["--zk", "127.0.0.1:1", "--cluster", "c", "--credentials-file", str(path), *args]
    return CliRunner().invoke(load_command("api"), argv, env={"PRODSTATE_CONFIG": ""})


def refused(result, says: str) -> None:
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_no_tokens_no_server(tmp_path):
    refused(run(tmp_path, ""), "no [api.tokens]")


def test_https_files_go_together(tmp_path):
    refused(run(tmp_path, TOKENS, "--https-key-file", "k.pem"), "go together")
    refused(run(tmp_path, TOKENS, "--https-client-ca-file", "ca.pem"), "needs --https-cert-file")


def test_an_address_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(run(tmp_path, TOKENS, "--port", str(port)), f"cannot serve on 127.0.0.1:{port}")


def test_the_listening_socket_is_tcp_so_answers_are_not_held_back_by_nagle():
    from prodstate.api.cli import listen

    with listen("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only then
