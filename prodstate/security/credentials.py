"""Secrets: where they come from (a private TOML file, the environment), never the command line.

The credentials file (``--credentials-file`` / ``PRODSTATE_CREDENTIALS_FILE``), mode 0600::

    [zookeeper]                  # the agents' digest identity: ALL on prodstate's znodes
    user = "prodstate"
    password = "..."
    acl_digests = ["prodstate-next:base64-sha1"]   # also granted ALL (rotation)

    [redis.admin]                # the agent's own identity on every Redis (the operator's
    user = "prodstate-agent"     # redis.conf or aclfile creates it)
    password = "..."

    [redis.replication]          # created by the agent (ACL SETUSER); masteruser/masterauth
    user = "prodstate-repl"
    password = "..."
    other_passwords = ["..."]    # also accepted, while a new password rolls out

    [redis.branch_replication]   # optional, on branch machines only: how branches
    user = "prodstate-branch"    # replicate; with it, a serving root refuses the
    password = "..."             # replication user, so every acknowledgement is a branch's

    [redis.writer]               # created by the agent: prodstate.Client writes at the root
    [redis.reader]               # created by the agent: local readers, check, status

    [api.tokens.NAME]            # ``prodstate api``: an identity NAME of the HTTP API
    token = "..."                # what its requests send (Authorization: Bearer ...)
    rights = ["read", "report"]  # of read, report, write

Each secret may instead come from the environment, which wins over the file:
``PRODSTATE_ZK_USER``/``PRODSTATE_ZK_PASSWORD`` and ``PRODSTATE_REDIS_<ROLE>_USER``/
``_PASSWORD`` (ROLE: ADMIN, REPLICATION, BRANCH_REPLICATION, WRITER, READER).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prodstate.core.model import DataError

REDIS_ROLES = ("admin", "replication", "branch_replication", "writer", "reader")
#: What an HTTP API identity may be allowed: read records, phone home, write keys.
API_RIGHTS = ("read", "report", "write")
#: Shortest API token accepted (characters).
API_TOKEN_MIN = 16
#: ZooKeeper digest ACL ids: ``user:base64(sha1(user:password))``.
_DIGEST_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class CredentialsError(DataError):
    """The credentials file or environment is unusable."""


@dataclass(frozen=True)
class Secret:
    """A user name and its password(s); the passwords never appear in a repr."""

    user: str
    password: str = field(repr=False)
    #: Further passwords Redis accepts for this user (a rotation in progress).
    other_passwords: tuple[str, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        return f"{self.user}:***"


@dataclass(frozen=True)
class ApiToken:
    """An identity of the HTTP API: its name, its token (never in a repr) and its rights."""

    name: str
    token: str = field(repr=False)
    rights: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Credentials:
    """Every identity prodstate may use; None where none is configured."""

    zookeeper: Secret | None = None
    acl_digests: tuple[str, ...] = ()
    redis: Mapping[str, Secret] = field(default_factory=dict)
    #: The HTTP API's identities by name (``[api.tokens.NAME]``).
    api_tokens: Mapping[str, ApiToken] = field(default_factory=dict)

    def redis_user(self, role: str) -> Secret | None:
        """The Redis identity for ``role`` (admin, replication, writer, reader), if any."""
        return self.redis.get(role)

    def secrets(self) -> list[str]:
        """Every password held (for tests that check they never leak)."""
        found = [self.zookeeper.password] if self.zookeeper else []
        for secret in self.redis.values():
            found += [secret.password, *secret.other_passwords]
        return found + [t.token for t in self.api_tokens.values()]


NONE = Credentials()


def load_credentials(path: str | None, environ: Mapping[str, str] = os.environ) -> Credentials:
    """Credentials from the file at ``path`` (if any) overridden by ``environ``.

    CredentialsError, with a message naming the problem, if the file cannot be read, is
    readable by group or others, is not valid TOML, or holds unknown or ill-typed settings.
    """
    data: dict[str, Any] = read_file(path) if path else {}
    unknown = set(data) - {"zookeeper", "redis", "api"}
    if unknown:
        raise CredentialsError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    zk_table = _table(data, "zookeeper", path)
    zookeeper = _secret(zk_table, environ, "PRODSTATE_ZK", "zookeeper", path, ("acl_digests",))
    digests = zk_table.get("acl_digests", [])
    if not isinstance(digests, list) or not all(_is_digest(d) for d in digests):
        raise CredentialsError(f"{path}: zookeeper.acl_digests must be 'user:base64-sha1' strings")
    redis_table = _table(data, "redis", path)
    unknown = set(redis_table) - set(REDIS_ROLES)
    if unknown:
        raise CredentialsError(f"{path}: unknown redis role(s) {', '.join(sorted(unknown))}")
    users = {}
    for role in REDIS_ROLES:
        table = _table(redis_table, role, path, f"redis.{role}")
        env = f"PRODSTATE_REDIS_{role.upper()}"
        secret = _secret(table, environ, env, f"redis.{role}", path, ("other_passwords",))
        if secret is not None:
            users[role] = secret
    return Credentials(zookeeper, tuple(digests), users, _api_tokens(data, path))


def _api_tokens(data: dict[str, Any], path: str | None) -> dict[str, ApiToken]:
    """The ``[api.tokens.NAME]`` tables: each a token of at least API_TOKEN_MIN printable
    characters (no spaces), used by one identity only, and a list of API_RIGHTS."""
    api = _table(data, "api", path)
    unknown = set(api) - {"tokens"}
    if unknown:
        raise CredentialsError(f"{path}: unknown setting(s) in api: {', '.join(sorted(unknown))}")
    found: dict[str, ApiToken] = {}
    for name, table in sorted(_table(api, "tokens", path, "api.tokens").items()):
        where = f"{path}: api.tokens.{name}"
        if not isinstance(table, dict) or set(table) - {"token", "rights"}:
            raise CredentialsError(f"{where}: must be a table of token and rights")
        token, rights = table.get("token"), table.get("rights", [])
        if not isinstance(token, str) or len(token) < API_TOKEN_MIN or not token.isprintable():
            raise CredentialsError(
                f"{where}: token must be at least {API_TOKEN_MIN} printable characters"
            )
        if " " in token or any(t.token == token for t in found.values()):
            raise CredentialsError(f"{where}: token must hold no space and be its own")
        if not isinstance(rights, list) or not rights or any(r not in API_RIGHTS for r in rights):
            raise CredentialsError(f"{where}: rights must be a list of {', '.join(API_RIGHTS)}")
        found[name] = ApiToken(name, token, frozenset(rights))
    return found


def read_file(path: str) -> dict[str, Any]:
    """The TOML credentials file; refused unless only its owner can read it."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise CredentialsError(
                    f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o}): "
                    "chmod 600 it"
                )
            return tomllib.load(handle)
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path} is not valid TOML: {exc}") from None


def _table(data: dict[str, Any], key: str, path: str | None, name: str = "") -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CredentialsError(f"{path}: {name or key} must be a table")
    return value


def _secret(
    table: dict[str, Any],
    environ: Mapping[str, str],
    env: str,
    name: str,
    path: str | None,
    extra: tuple[str, ...],
) -> Secret | None:
    unknown = set(table) - {"user", "password", *extra}
    if unknown:
        raise CredentialsError(
            f"{path}: unknown setting(s) in {name}: {', '.join(sorted(unknown))}"
        )
    user = environ.get(f"{env}_USER", table.get("user"))
    password = environ.get(f"{env}_PASSWORD", table.get("password"))
    if user is None and password is None:
        return None
    where = f"{name} (file {path} or {env}_USER/_PASSWORD)"
    if not isinstance(user, str) or not user or not user.isprintable() or " " in user:
        raise CredentialsError(f"{where}: user must be a non-empty word")
    if not isinstance(password, str) or not password or " " in password:
        raise CredentialsError(f"{where}: password must be a non-empty string without spaces")
    other = table.get("other_passwords", [])
    if not isinstance(other, list) or not all(
        isinstance(p, str) and p and " " not in p for p in other
    ):
        raise CredentialsError(f"{where}: other_passwords must be a list of passwords")
    if ":" in user:
        raise CredentialsError(f"{where}: user must not contain ':'")
    return Secret(user, password, tuple(other))


def _is_digest(value: object) -> bool:
    if not isinstance(value, str) or value.count(":") != 1:
        return False
    user, digest = value.split(":")
    return bool(user) and len(digest) == 28 and set(digest) <= _DIGEST_CHARS
