"""Option parsing for the commands that run every minute on every machine (``check``,
``get``): :mod:`argparse` rather than click, which costs them more than Python's own
start-up, with the same ``PRODSTATE_<OPTION>`` variables and security options as the
click commands; the TLS and credential modules load only when those are given.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from prodstate.core.address import DataError, parse_address

if TYPE_CHECKING:
    from prodstate.security.credentials import Secret
    from prodstate.security.tls import TlsFiles


class UsageError(Exception):
    """A command line (or PRODSTATE_* variable) the command cannot run with."""


def _columns() -> int:
    """The terminal's width, as :func:`shutil.get_terminal_size` finds it."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, given its width: argparse makes one for every option
    added, and left to itself each imports :mod:`shutil` (with its compression modules)
    to ask the terminal's width, a few ms of every run for a help rarely printed."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        super().__init__(prog, width=max(_columns() - 2, 40), **kwargs)


class Parser(argparse.ArgumentParser):
    """An argparse parser that raises :class:`UsageError` instead of printing the usage
    and exiting 2, and takes no abbreviated options."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, formatter_class=_Formatter, **kwargs)
        self.add_argument(
            "--config",
            metavar="FILE",
            help="TOML file of settings (default /etc/prodstate/prodstate.toml if present; "
            "also PRODSTATE_CONFIG)",
        )

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_with_config(self, argv: Sequence[str], command: str) -> argparse.Namespace:
        """Parse ``argv``, the configuration file's settings for ``command`` standing in
        for options that neither ``argv`` nor ``PRODSTATE_<OPTION>`` give."""
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config")
        named = pre.parse_known_args(list(argv))[0].config
        from prodstate.cli import config_file

        path = config_file.find(named)
        if path is not None:
            self._take_defaults(path, command)
        return self.parse_args(list(argv))

    def _take_defaults(self, path: str, command: str) -> None:
        from prodstate.cli import COMMANDS
        from prodstate.cli.config_file import ConfigFileError, read, settings_for

        options = {
            a.option_strings[-1][2:]: a
            for a in self._actions
            if a.option_strings[-1:] and a.option_strings[-1].startswith("--")
            and a.dest not in ("config", "help", "version")
        }  # fmt: skip
        try:
            found = settings_for(read(path), path, (command,), options, COMMANDS)
        except ConfigFileError as exc:
            raise UsageError(str(exc)) from None
        for key, value in found.items():
            action = options[key]
            if env("--" + key) is not None:
                continue  # the environment wins over the file
            if isinstance(value, list | bool):
                raise UsageError(f"{path}: {key}: must be one string or number")
            try:
                action.default = action.type(str(value)) if callable(action.type) else str(value)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise UsageError(f"{path}: {key}: {exc}") from None


def env(option: str) -> str | None:
    """``PRODSTATE_<OPTION>`` (``--tls-ca-file``: ``PRODSTATE_TLS_CA_FILE``) if set and not
    empty, as click reads it."""
    return os.environ.get("PRODSTATE_" + option.lstrip("-").replace("-", "_").upper()) or None


def address(text: str) -> str:
    """argparse type: a ``HOST:PORT``."""
    try:
        parse_address(text)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


_SECURITY = {
    "--credentials-file": "private TOML file of credentials (mode 0600)",
    "--tls-ca-file": "CA certificate (PEM) that signs the Redis servers' certificates",
    "--tls-cert-file": "client certificate (PEM) for Redis servers that verify clients",
    "--tls-key-file": "private key (PEM) of --tls-cert-file",
}


def add_security_options(parser: argparse.ArgumentParser) -> None:
    """``--credentials-file`` and ``--tls-*``, read with :func:`reader_and_tls`."""
    for name, text in _SECURITY.items():
        parser.add_argument(name, metavar="FILE", default=env(name), help=text)


def reader_and_tls(options: argparse.Namespace) -> tuple[Secret | None, TlsFiles | None]:
    """The Redis reader identity (from the credentials file or PRODSTATE_REDIS_READER_*)
    and the TLS files the options name; UsageError naming what is wrong."""
    user = None
    if options.credentials_file or any(k.startswith("PRODSTATE_REDIS_READER_") for k in os.environ):
        from prodstate.security.credentials import load_credentials

        try:
            user = load_credentials(options.credentials_file).redis_user("reader")
        except DataError as exc:
            raise UsageError(f"--credentials-file: {exc}") from None
    files = (options.tls_ca_file, options.tls_cert_file, options.tls_key_file)
    if not any(files):
        return user, None
    from prodstate.security.tls import tls_files

    try:
        return user, tls_files(*files)
    except DataError as exc:
        raise UsageError(str(exc)) from None


def click_command(name: str, main: Callable[[Sequence[str]], int], help: str | None) -> Any:
    """``main`` as a click command of the ``prodstate`` group (its ``--help`` and
    :func:`prodstate.cli.load_command`): the arguments are handed over untouched."""
    import click

    @click.command(
        name=name,
        help=help,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise SystemExit(main(args))

    return command
