"""Credentials from a private file and the environment; the ACLs and Redis users made of them."""

from __future__ import annotations

import importlib
import secrets
import string
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo.exceptions import NoAuthError
from kazoo.security import ANYONE_ID_UNSAFE, Permissions, make_digest_acl_credential

from prodstate.cli import COMMANDS, FAST, load_command
from prodstate.cli.agent import agent
from prodstate.cli.exits import describe
from prodstate.redis.users import RULES, managed_users, replication_settings, setuser_args
from prodstate.security.credentials import (
    REDIS_ROLES,
    Credentials,
    CredentialsError,
    Secret,
    load_credentials,
)
from prodstate.security.tls import tls_files
from prodstate.testing.secure import CertificateAuthority
from prodstate.zk.acl import auth_data, prodstate_acl, same_acl

PASSWORD = secrets.token_urlsafe(16)


def write(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    path.chmod(mode)
    return str(path)


FULL = f"""
[zookeeper]
user = "agents"
password = "{PASSWORD}"
acl_digests = ["next:{make_digest_acl_credential("next", "x").split(":")[1]}"]

[redis.admin]
user = "prodstate-agent"
password = "{PASSWORD}a"

[redis.replication]
user = "repl"
password = "{PASSWORD}r"
other_passwords = ["{PASSWORD}old"]

[redis.writer]
user = "writer"
password = "{PASSWORD}w"
"""


def test_a_full_file_loads(tmp_path):
    creds = load_credentials(write(tmp_path / "c.toml", FULL), environ={})
    assert creds.zookeeper == Secret("agents", PASSWORD)
    assert creds.acl_digests[0].startswith("next:")
    assert set(creds.redis) == {"admin", "replication", "writer"}
    assert creds.redis_user("replication").other_passwords == (f"{PASSWORD}old",)
    assert creds.redis_user("reader") is None


def test_no_file_and_no_environment_is_no_credentials():
    assert load_credentials(None, environ={}) == Credentials()


def test_environment_wins_over_the_file(tmp_path):
    env = {"PRODSTATE_ZK_PASSWORD": "from-env", "PRODSTATE_REDIS_READER_USER": "r"}
    env["PRODSTATE_REDIS_READER_PASSWORD"] = "rp"
    creds = load_credentials(write(tmp_path / "c.toml", FULL), environ=env)
    assert creds.zookeeper == Secret("agents", "from-env")
    assert creds.redis_user("reader") == Secret("r", "rp")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_can_read_is_refused(tmp_path, mode):
    path = write(tmp_path / "c.toml", FULL, mode)
    with pytest.raises(CredentialsError, match="chmod 600"):
        load_credentials(path, environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[zookeeper]\nuser = 'a'\n", "password"),
        ("[zookeeper]\npassword = 'a'\n", "user"),
        ("[zookeeper]\nuser = 'a:b'\npassword = 'p'\n", "':'"),
        ("[zookeeper]\nuser = 'a'\npassword = 'p'\nacl_digests = ['x']\n", "acl_digests"),
        ("[zookeeper]\nuser = 'a'\npassword = 'p'\ncolour = 1\n", "colour"),
        ("[redis.root]\nuser = 'a'\npassword = 'p'\n", "root"),
        ("[redis]\nadmin = 3\n", "must be a table"),
        ("[redis.writer]\nuser = 'a'\npassword = 5\n", "password"),
        ("[redis.writer]\nuser = 'a'\npassword = 'p'\nother_passwords = 'x'\n", "other_passwords"),
        ("[vault]\n", "unknown section"),
        ("user = ", "not valid TOML"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, text, message):
    with pytest.raises(CredentialsError, match=message):
        load_credentials(write(tmp_path / "c.toml", text), environ={})


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CredentialsError, match="cannot read"):
        load_credentials(str(tmp_path / "nope.toml"), environ={})


toml_words = st.text(string.ascii_letters + string.digits + "_-:", min_size=1, max_size=8)
toml_values = toml_words.map(repr) | st.integers().map(str) | st.just("[]") | st.just("{}")
tables = st.sampled_from(["zookeeper", "redis.admin", "redis.reader", "redis", "other"])
keys = st.sampled_from(["user", "password", "acl_digests", "other_passwords", "admin"]) | toml_words


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.dictionaries(tables, st.dictionaries(keys, toml_values, max_size=3), max_size=3))
def test_any_file_loads_or_is_a_credentials_error(tmp_path, doc):
    text = "".join(
        f"[{table}]\n" + "".join(f"{k!r} = {v}\n" for k, v in body.items())
        for table, body in doc.items()
    )
    try:
        creds = load_credentials(write(tmp_path / "c.toml", text), environ={})
    except CredentialsError as exc:
        assert str(exc)
        return
    assert set(creds.redis) <= set(REDIS_ROLES)


def test_passwords_never_show_in_a_repr(tmp_path):
    creds = load_credentials(write(tmp_path / "c.toml", FULL), environ={})
    shown = repr(creds) + str(creds.zookeeper)
    assert creds.secrets() and not any(secret in shown for secret in creds.secrets())


def test_an_unreadable_credentials_file_is_a_usage_error_not_a_traceback(tmp_path):
    path = write(tmp_path / "c.toml", FULL, 0o644)
    args = ["--zk", "z:1", "--cluster", "c", "--tier", "leaf", "--redis", "h:1"]
    result = CliRunner().invoke(agent, [*args, "--credentials-file", path])
    assert result.exit_code == 2 and "chmod 600" in result.output
    assert "Traceback" not in result.output


def test_there_is_no_option_that_takes_a_secret():
    names = {name for p in agent.params for name in p.opts}
    assert not {n for n in names if "password" in n or "secret" in n}


def _leaf_commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        return [
            found
            for name, sub in command.commands.items()
            for found in _leaf_commands(sub, f"{path} {name}")
        ]
    return [(path, command)]


def test_every_command_that_reaches_zookeeper_or_redis_takes_the_credentials_and_tls_files():
    wanted = {"--credentials-file", "--tls-ca-file", "--tls-cert-file", "--tls-key-file"}
    zk_tls = {"--zk-tls-ca-file", "--zk-tls-cert-file", "--zk-tls-key-file"}
    missing, checked, zk_checked = [], 0, 0
    for name in COMMANDS:
        for path, command in _leaf_commands(load_command(name), name):
            options = {o for p in command.params for o in p.opts}
            if name in FAST:  # parsed with argparse; the click command only hands over
                module = importlib.import_module(COMMANDS[name].partition(":")[0])
                options = {o for a in module.parser()._actions for o in a.option_strings}
            if options & {"--zk", "--redis"}:
                checked += 1
                if not wanted <= options:
                    missing.append(path)
            if "--zk" in options:
                zk_checked += 1
                if not zk_tls <= options:
                    missing.append(f"{path} (ZooKeeper over TLS)")
    assert checked > 20 and zk_checked > 15 and missing == []


def test_a_state_database_command_refuses_an_unreadable_credentials_file(tmp_path):
    from prodstate.statedb.lock_cli import lock

    path = write(tmp_path / "c.toml", FULL, 0o644)
    args = ["acquire", "web", "--reason", "r", "--zk", "127.0.0.1:1", "--cluster", "c"]
    result = CliRunner().invoke(lock, [*args, "--credentials-file", path])
    assert result.exit_code == 2 and "chmod 600" in result.output
    assert "Traceback" not in result.output and "ZooKeeper" not in result.output


@pytest.mark.parametrize(
    ("exc", "shown"),
    [
        (NoAuthError(), "NoAuthError"),
        (ValueError(" \n "), "ValueError"),
        (ValueError("two\nlines  here"), "two lines here"),
    ],
)
def test_a_failure_is_described_in_one_nonempty_line(exc, shown):
    assert describe(exc) == shown


# --- ZooKeeper ACLs ---------------------------------------------------------------------------


def test_without_credentials_znodes_keep_zookeepers_open_default():
    assert prodstate_acl(Credentials()) is None and auth_data(Credentials()) == []


def test_agents_get_all_everyone_else_reads(tmp_path):
    creds = load_credentials(write(tmp_path / "c.toml", FULL), environ={})
    acl = prodstate_acl(creds)
    assert auth_data(creds) == [("digest", f"agents:{PASSWORD}")]
    by_id = {(a.id.scheme, a.id.id): a.perms for a in acl}
    assert by_id[("digest", make_digest_acl_credential("agents", PASSWORD))] == Permissions.ALL
    assert by_id[("digest", creds.acl_digests[0])] == Permissions.ALL
    assert by_id[(ANYONE_ID_UNSAFE.scheme, ANYONE_ID_UNSAFE.id)] == Permissions.READ
    assert same_acl(acl, list(reversed(acl))) and not same_acl(acl, acl[:1])


# --- Redis users -------------------------------------------------------------------------------


def test_users_are_reset_then_given_every_password_and_their_rules():
    secret = Secret("repl", "new", ("old",))
    assert setuser_args("replication", secret) == [
        "repl",
        "reset",
        "on",
        ">new",
        ">old",
        *RULES["replication"],
    ]


def test_the_agent_manages_every_role_but_its_own(tmp_path):
    creds = load_credentials(write(tmp_path / "c.toml", FULL), environ={})
    assert set(managed_users(creds)) == {"replication", "writer"}
    assert replication_settings(creds) == {"masteruser": "repl", "masterauth": f"{PASSWORD}r"}
    assert replication_settings(Credentials()) == {}


# --- TLS files ---------------------------------------------------------------------------------


def test_tls_options_are_checked(tmp_path):
    authority = CertificateAuthority(tmp_path)
    ca, (cert, key) = authority.ca_file, authority.issue("me", "127.0.0.1")
    assert tls_files(None, None, None) is None
    assert tls_files(ca, None, None).redis_kwargs()["ssl_ca_certs"] == ca
    assert tls_files(ca, cert, key).kazoo_kwargs()["certfile"] == cert
    garbage = write(tmp_path / "garbage.pem", "x")
    for bad in [
        (None, ca, ca),
        (ca, ca, None),
        (str(tmp_path / "missing"), None, None),
        (garbage, None, None),
        (ca, cert, garbage),
        (ca, cert, authority.issue("other", "127.0.0.1")[1]),  # not this certificate's key
    ]:
        with pytest.raises(ValueError):
            tls_files(*bad)


def test_branches_replicate_with_their_own_identity_when_they_have_one():
    from prodstate.redis.users import leaf_replication_user, replication_settings, setuser_args
    from prodstate.security.credentials import Credentials, Secret

    leafy = Secret("repl", "p1")
    both = Credentials(redis={"replication": leafy, "branch_replication": Secret("br", "p2")})
    assert replication_settings(both, branch=True) == {"masteruser": "br", "masterauth": "p2"}
    assert replication_settings(both) == {"masteruser": "repl", "masterauth": "p1"}
    assert leaf_replication_user(both) == leafy
    only = Credentials(redis={"replication": leafy})
    assert replication_settings(only, branch=True)["masteruser"] == "repl"
    assert leaf_replication_user(only) is None  # one identity for all: nothing to turn off
    assert setuser_args("replication", leafy, on=False)[:3] == ["repl", "reset", "off"]
