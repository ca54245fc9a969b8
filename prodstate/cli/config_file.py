"""The one configuration file every command reads.

``/etc/prodstate/prodstate.toml`` unless ``PRODSTATE_CONFIG`` or ``--config`` names
another (a named file must exist; the default one may be absent). Its keys are option
names (``node-id`` or ``node_id``); the command line wins over the environment, which
wins over the file::

    zk = "zk1:2181,zk2:2181,zk3:2181"      # shared: every command that has the option
    cluster = "prod"
    credentials-file = "/etc/prodstate/credentials.toml"

    [agent]                                 # one command's own settings
    tier = "leaf"
    node-id = "web12"

    [lock.acquire]                          # a subcommand's
    ttl = "2h"

Only the shared options may stand at the top level; any other key, a section no command
has, a key the command's own section does not know, or a value its option refuses is a
usage error naming the file, the key and the reason. Sections of other commands are
checked when those commands run.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from typing import Any

#: Where the file is when neither ``--config`` nor ``PRODSTATE_CONFIG`` names one.
DEFAULT_PATH = "/etc/prodstate/prodstate.toml"
#: The environment variable naming the file.
ENV = "PRODSTATE_CONFIG"
#: Options that may stand at the top level, applied to every command that has them.
SHARED = frozenset(
    {
        "zk",
        "cluster",
        "redis",
        "credentials-file",
        "tls-ca-file",
        "tls-cert-file",
        "tls-key-file",
        "zk-tls-ca-file",
        "zk-tls-cert-file",
        "zk-tls-key-file",
    }
)
#: The largest configuration file read, in bytes.
MAX_BYTES = 1 << 20

Scalar = str | int | float | bool


class ConfigFileError(Exception):
    """The file cannot be read or holds a setting no command may take."""


def find(named: str | None) -> str | None:
    """The file to read: ``named`` (``--config``), else the one ``PRODSTATE_CONFIG``
    names, else the default one if it exists (None: no file)."""
    named = named or os.environ.get(ENV) or None
    if named is not None:
        return named
    return DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None


def read(path: str) -> dict[str, Any]:
    """The TOML table in ``path``."""
    import tomllib  # only where a file is read: check and get run without one

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigFileError(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode())
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path} is not valid TOML: {exc}") from None


def settings_for(
    data: Mapping[str, Any],
    where: str,
    command_path: tuple[str, ...],
    known: Collection[str],
    sections: Collection[str],
    groups: Sequence[tuple[Collection[str], Collection[str]]] = (),
) -> dict[str, Scalar | list[Scalar]]:
    """The settings the file ``where`` holds for the command at ``command_path`` (e.g.
    ``("lock", "acquire")``), whose options are ``known`` (their file names). ``sections``
    are the top-level command names; ``groups`` gives, for each group along the path, its
    subcommands' names and every option under it. Raises :class:`ConfigFileError` for
    anything no command may take."""
    data = _dashed_keys(data, where)
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in sections:
                raise ConfigFileError(f"{where}: [{key}]: no such command")
        elif key not in SHARED:
            hint = ", ".join(sorted(SHARED))
            raise ConfigFileError(
                f"{where}: {key}: not a shared setting (those are {hint}); "
                "a command's own settings go in its section, e.g. [agent]"
            )
    found = {k: v for k, v in data.items() if not isinstance(v, dict) and k in known}
    table: Mapping[str, Any] = data
    for depth, name in enumerate(command_path):
        section = table.get(name)
        if section is None:
            break
        label = ".".join(command_path[: depth + 1])
        if not isinstance(section, dict):
            raise ConfigFileError(f"{where}: {label}: not a table")
        subcommands, under = groups[depth] if depth < len(groups) else ((), ())
        for key, value in section.items():
            if isinstance(value, dict):
                if key not in subcommands:
                    raise ConfigFileError(f"{where}: [{label}.{key}]: no such command")
            elif key in known:
                found[key] = value
            elif key not in under:
                raise ConfigFileError(f"{where}: [{label}] {key}: no such setting")
        table = section
    for key, value in found.items():
        if not _plain(value):
            raise ConfigFileError(
                f"{where}: {key}: must be a string, number, boolean or a list of those"
            )
    return found


def _dashed_keys(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``table`` with ``node_id`` spelt ``node-id``, at every depth."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name in out:
            raise ConfigFileError(f"{where}: {name}: given twice ({key!r} and another)")
        out[name] = _dashed_keys(value, where) if isinstance(value, dict) else value
    return out


def _plain(value: object) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, Scalar) for v in value)
    return isinstance(value, Scalar)
