"""``HOST:PORT`` addresses, and the error every parser of outside data raises.

Kept apart from :mod:`prodstate.core.model` so that ``prodstate check`` and ``get`` can
parse an address without loading the records.
"""

from __future__ import annotations


class DataError(ValueError):
    """External data (a znode, a config value) is malformed."""


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:6379``) -> (host, port); DataError if malformed."""
    if not isinstance(text, str) or ":" not in text:
        raise DataError(f"address {text!r} is not HOST:PORT")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not (port_text.isascii() and port_text.isdigit()):
        raise DataError(f"address {text!r} is not HOST:PORT")
    if not 0 < int(port_text) < 65536:
        raise DataError(f"address {text!r} is not HOST:PORT")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """(host, port) -> ``host:port``, bracketing IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
