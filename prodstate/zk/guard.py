"""The agents' ACL on a cluster's persistent znodes, kept by the agents (a recipe of the
store: its requests go through the store's bounded ``call``).

With credentials every persistent znode gets the agents' ACL (their digest identity ALL,
everyone READ; no world CREATE, ``/prodstate`` included). What someone else made first is
vouched for before it is used: a znode whose ACL the agents cannot set means someone else
owns it, and they refuse to act on the cluster (UntrustedZnodes); what was created in an
open folder is deleted when the folder is secured.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.security import ACL

from prodstate.zk.acl import acl_text, creates_beyond, same_acl
from prodstate.zk.errors import StoreUnavailable, UntrustedZnodes
from prodstate.zk.paths import GUARDED, OPEN_FOLDERS, PERSISTENT, TOP, Layout

log = logging.getLogger(__name__)


class AclGuard:
    """Creates a cluster's persistent znodes and keeps the agents' ACL on them."""

    def __init__(
        self,
        client: KazooClient,
        call: Callable[..., Any],
        layout: Layout,
        acl: list[ACL] | None,
    ) -> None:
        self._client = client
        self._call = call
        self.layout = layout
        #: The agents' ACL (None: an open cluster, ZooKeeper's default).
        self.acl = acl
        #: Why this cluster's znodes cannot be trusted ("" while they can).
        self.untrusted = ""

    def ensure_paths(self) -> None:
        """Create prodstate's persistent znodes; with credentials, give each the agents' ACL
        (no world CREATE anywhere, ``/prodstate`` included). UntrustedZnodes when one keeps
        an ACL the agents cannot change: someone else owns it, and the agents refuse to act
        on a cluster they cannot vouch for."""
        self.untrusted = ""
        self.secure()  # what someone else made first is vouched for before it is used
        for path in PERSISTENT:
            full = self.layout.path(path)
            if self._call(self._client.exists_async, full) is None:
                with contextlib.suppress(NodeExistsError):
                    self._call(self._client.create_async, full, b"", makepath=True)
        self.secure()

    def secure(self) -> None:
        """Give every persistent znode that exists the agents' ACL (with credentials);
        UntrustedZnodes naming those whose ACL the agents cannot set."""
        if self.acl is None:
            return
        if self._call(self._client.exists_async, TOP) is not None:
            self._ensure_acl(TOP, self.acl)  # shared by clusters: theirs to set, if not ours
        problems = []
        for path in GUARDED:
            full = self.layout.path(path)
            if self._call(self._client.exists_async, full) is None:
                continue
            previous, problem = self._ensure_acl(full, self.acl)
            problems += [problem] if problem else []
            if previous and path in OPEN_FOLDERS and creates_beyond(previous, self.acl):
                self._purge_unvouched(full)
        if problems:
            self.untrusted = "; ".join(problems)
            raise UntrustedZnodes(self.untrusted)

    def _ensure_acl(self, path: str, acl: list[ACL]) -> tuple[list[ACL], str]:
        """Set ``acl`` on a persistent znode made before credentials (or with older ones):
        the ACL it replaced ([] if none), and why it could not ("" if it is ``acl`` now)."""
        current, stat = self._call(self._client.get_acls_async, path)
        if same_acl(current, acl):
            return [], ""
        try:
            self._call(self._client.set_acls_async, path, acl, stat.aversion)
        except StoreUnavailable as exc:
            log.warning("cannot set the ACL of a znode", extra={"path": path, "error": str(exc)})
            return [], f"{path} has an ACL the agents cannot set ({acl_text(current)})"
        log.info("set the ACL of a znode", extra={"path": path, "acl": acl_text(acl)})
        return current, ""

    def _purge_unvouched(self, folder: str) -> None:
        """Delete what was planted in ``folder`` while others could create in it: every
        child whose ACL is not the agents' own."""
        assert self.acl is not None
        for child in self._call(self._client.get_children_async, folder):
            path = f"{folder}/{child}"
            try:
                acl, _ = self._call(self._client.get_acls_async, path)
                if not same_acl(acl, self.acl):
                    self._call(self._client.delete_async, path)
                    log.warning(
                        "deleted a znode made while its folder was open to anyone",
                        extra={"path": path, "acl": acl_text(acl)},
                    )
            except NoNodeError:
                continue
