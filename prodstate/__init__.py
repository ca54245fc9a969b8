"""prodstate: global state on every machine, through a self-healing Redis tree.

``from prodstate import Client`` gives the client (see prodstate.client).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    """Import the client lazily, so that ``prodstate.core.model`` and friends stay light."""
    if name == "Client":
        from prodstate.client import Client

        return Client
    raise AttributeError(f"module 'prodstate' has no attribute {name!r}")
