"""Exit codes of the commands, in one place, and the one-line failure they print.

Data and state-database commands: 0 done (the write confirmed, the read answered);
1 certainly not applied or refused (a lock held, no such key or record); 2 usage error
or a service unreachable; 3 may have been applied but was not confirmed.
``prodstate check`` uses the Nagios codes instead (:class:`prodstate.ops.check.Status`).
"""

from __future__ import annotations

from typing import NoReturn

import click

OK = 0
#: Certainly not applied, refused, or not found.
NOT_APPLIED = 1
#: A usage error, or ZooKeeper or Redis unreachable.
ERROR = 2
#: Written, but not confirmed: it may have been applied.
UNCERTAIN = 3


def describe(exc: BaseException) -> str:
    """``exc`` as one line: its text, or its type's name when it has none (kazoo's
    ``NoAuthError()`` and ``ConnectionLoss()`` say nothing), so no message ends empty."""
    return " ".join(str(exc).split()) or type(exc).__name__


def fail(message: str, code: int = NOT_APPLIED) -> NoReturn:
    """Print ``prodstate: message`` on stderr and exit with ``code``."""
    click.echo(f"prodstate: {message}", err=True)
    raise SystemExit(code)
