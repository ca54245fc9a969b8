"""What the ZooKeeper side raises: the store is out of reach, or cannot be trusted."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """ZooKeeper cannot be asked right now (not connected, or a request timed out)."""


class UntrustedZnodes(StoreUnavailable):
    """A prodstate znode keeps an ACL the agents cannot set: they refuse to act on it."""
