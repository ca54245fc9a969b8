"""``--credentials-file`` and the ``--tls-*`` options, shared by every command.

The options only name files; secrets are read from the (private) file or the environment,
never taken from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from prodstate.cli.options import option
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
    tls: TlsFiles | None = None


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.meta.setdefault("prodstate.security", {})[param.name] = value


def security_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; read them in the command with :func:`security`."""
    for name, text in reversed(_FILES.items()):
        command = option(
            name,
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_remember,
            help=text,
        )(command)
    return command


def security(ctx: click.Context) -> Security:
    """Load what the options name; a usage error (exit 2) naming the problem otherwise."""
    given = ctx.meta.get("prodstate.security", {})
    try:
        credentials = load_credentials(given.get("credentials_file"))
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--credentials-file") from None
    try:
        tls = tls_files(
            given.get("tls_ca_file"), given.get("tls_cert_file"), given.get("tls_key_file")
        )
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="--tls-ca-file") from None
    return Security(credentials, tls)
