"""This agent's candidacy in the root election (a recipe of the store: its requests go
through the store's bounded ``call``).

Candidates are ephemeral sequential znodes ``election/n_<uuid hex>_<seq>`` holding a node
id; the lowest sequence leads. Joining is a protected create, as kazoo's Lock recipe does:
a znode of this store's prefix that its session already owns is adopted instead of a
second being made, so a create whose reply was lost leaves no orphan at the head of the
queue. Persistent znodes (planted: no session holds them) are no candidates.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from prodstate.core.model import DataError, candidate_from_znode
from prodstate.zk.paths import Layout, candidate_prefix, ordered_candidates

log = logging.getLogger(__name__)


class Election:
    """Join, leave and read the root election for one store."""

    def __init__(
        self,
        client: KazooClient,
        call: Callable[..., Any],
        layout: Layout,
        on_watch: Callable[..., None],
        prefix: str | None = None,
    ) -> None:
        self._client = client
        self._call = call
        self._on_watch = on_watch
        self.layout = layout
        #: The name of this store's election znodes before their sequence (``n_<uuid>_``).
        #: A resumed session keeps the prefix its earlier process used, to adopt its znode.
        self.prefix = prefix or candidate_prefix(uuid.uuid4().hex)
        #: The path of this agent's candidate znode, while it stands (as far as it knows).
        self.node: str | None = None

    def read(self, session_id: int) -> list[str]:
        """The node ids standing for election, in order; a candidate of this store that its
        session owns but did not know of (a create whose reply was lost) is adopted."""
        path = self.layout.election
        children = self._call(self._client.get_children_async, path, self._on_watch)
        if self.node and self.node.rsplit("/", 1)[1] not in children:
            self.node = None
        candidates = []
        for child in ordered_candidates(children):
            try:
                raw, stat = self._call(self._client.get_async, f"{path}/{child}")
            except NoNodeError:
                continue
            if (
                self.node is None
                and child.startswith(self.prefix)
                and stat.ephemeralOwner == session_id
            ):
                self.node = f"{path}/{child}"
            try:
                if not stat.ephemeralOwner:
                    raise DataError("it is not ephemeral: no agent's session holds it")
                node = candidate_from_znode(raw)
            except DataError as exc:
                log.warning("ignoring election znode", extra={"node": child, "error": str(exc)})
                continue
            if node not in candidates:
                candidates.append(node)
        return candidates

    def join(self, node_id: str, session_id: int) -> None:
        """Enter the root election (at the back of the queue), with one candidate znode.

        A protected create, as kazoo's Lock recipe does: the znode is named after this
        store (``n_<uuid hex>_<seq>``), and one its session already owns is adopted instead
        of a second being made. A create that ZooKeeper applied but whose reply was lost
        (StoreUnavailable) thus never leaves an orphan that heads the queue with no agent
        acting on it.
        """
        if self.node is not None:
            return
        own = self._own(session_id)
        if own:
            log.info("adopting this session's election znode", extra={"path": own[0]})
            for extra in own[1:]:
                with contextlib.suppress(NoNodeError):
                    self._call(self._client.delete_async, extra)
            self.node = own[0]
            return
        path = f"{self.layout.election}/{self.prefix}"
        self.node = self._call(
            self._client.create_async, path, node_id.encode(), ephemeral=True, sequence=True
        )

    def leave(self, session_id: int) -> None:
        """Leave the root election: delete every election znode of this store that its
        session owns (the one it joined with, and any whose create reply was lost)."""
        for path in self._own(session_id):
            with contextlib.suppress(NoNodeError):
                self._call(self._client.delete_async, path)
        self.node = None

    def _own(self, session_id: int) -> list[str]:
        """The paths of this store's election znodes owned by ``session_id``, by sequence."""
        folder = self.layout.election
        children = self._call(self._client.get_children_async, folder)
        own = []
        for child in ordered_candidates(children):
            if not child.startswith(self.prefix):
                continue
            stat = self._call(self._client.exists_async, f"{folder}/{child}")
            if stat is not None and stat.ephemeralOwner == session_id:
                own.append(f"{folder}/{child}")
        return own
