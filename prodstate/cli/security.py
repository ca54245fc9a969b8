"""``--credentials-file`` and the ``--tls-*`` options, shared by every command, and the
``--zk-tls-*`` options that :func:`prodstate.cli.options.zk_options` adds.

The options only name files; secrets are read from the (private) file or the environment,
never taken from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from prodstate.cli.options import FILE_OPTIONS, file_options
from prodstate.core.model import DataError
from prodstate.security.credentials import NONE, Credentials, load_credentials
from prodstate.security.tls import TlsFiles, tls_files

_FILES = {
    "--credentials-file": "Private TOML file of credentials (mode 0600).",
    "--tls-ca-file": "CA certificate (PEM) that signs the Redis servers' certificates.",
    "--tls-cert-file": "Client certificate (PEM) for Redis servers that verify clients.",
    "--tls-key-file": "Private key (PEM) of --tls-cert-file.",
}


@dataclass(frozen=True)
class Security:
    """The credentials and TLS files a command was given."""

    credentials: Credentials = NONE
    #: TLS to Redis (``--tls-*``).
    tls: TlsFiles | None = None
    #: TLS to ZooKeeper (``--zk-tls-*``).
    zk_tls: TlsFiles | None = None


def security_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; read them in the command with :func:`security`."""
    return file_options(_FILES)(command)


def security(ctx: click.Context) -> Security:
    """Load what the options name; a usage error (exit 2) naming the problem otherwise."""
    given = ctx.meta.get(FILE_OPTIONS, {})
    try:
        credentials = load_credentials(given.get("credentials_file"))
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--credentials-file") from None
    return Security(
        credentials,
        _tls(ctx, given, "--tls", "Redis servers"),
        _tls(ctx, given, "--zk-tls", "ZooKeeper servers"),
    )


def _tls(
    ctx: click.Context, given: dict[str, str | None], option: str, servers: str
) -> TlsFiles | None:
    """The TlsFiles of ``{option}-ca-file``, ``-cert-file`` and ``-key-file``, if given (the
    error names the options)."""
    key = option.lstrip("-").replace("-", "_")
    try:
        return tls_files(
            given.get(f"{key}_ca_file"),
            given.get(f"{key}_cert_file"),
            given.get(f"{key}_key_file"),
            option=option,
            servers=servers,
        )
    except DataError as exc:
        raise click.UsageError(str(exc), ctx) from None
