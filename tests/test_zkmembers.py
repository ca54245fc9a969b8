"""A leaf's list of branches (``prodstate.zk.members``) against answers and watch events
given in a chosen order, with no server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kazoo.protocol.states import ZnodeStat

from prodstate.core.model import Member, Tier
from prodstate.zk.cache import Listing, ReadCache
from prodstate.zk.members import Members
from prodstate.zk.paths import Layout

LAYOUT = Layout("c")
FOLDER = LAYOUT.members(Tier.BRANCH)


def stat(cversion: int = 0, owner: int = 0) -> ZnodeStat:
    return ZnodeStat(1, 1, 0, 0, 0, cversion, 0, owner, 0, 0, 1)


class Server:
    """Answers the requests ``Members`` makes of kazoo from a dict of branches."""

    def __init__(self, branches: list[str], cversion: int) -> None:
        self.branches, self.cversion = branches, cversion
        self.sent: list[str] = []

    def get_async(self, path: str, watch: object = None) -> None: ...

    def get_children_async(self, path: str, watch: object = None, stat: bool = False) -> None: ...

    def call(self, method: Callable[..., Any], *args: Any) -> Any:
        self.sent.append(method.__name__)
        path = args[0]
        if method == self.get_children_async:
            return list(self.branches), stat(self.cversion)
        if path == FOLDER:
            return b"", stat(self.cversion)
        node_id = path.rsplit("/", 1)[1]
        return Member(node_id, Tier.BRANCH, f"{node_id}:6379").to_json(), stat(owner=7)


def members(server: Server, cache: ReadCache, settle: Callable[[], bool]) -> Members:
    no_commit = lambda tx: []  # noqa: E731 (reads only)
    return Members(server, server.call, LAYOUT, cache, lambda event: None, no_commit, settle)  # type: ignore[arg-type]


def test_a_deletion_told_before_the_list_but_handled_after_it_is_handled_first():
    # b2 was replaced (deleted and created again in one transaction): the list read after
    # it holds b2, and the deletion's event, told before that answer, must not take it off.
    cache = ReadCache()
    server = Server(["b1", "b2"], cversion=4)
    late = [f"{FOLDER}/b2"]

    def settle() -> bool:  # kazoo's event thread catching up with what it was told
        while late:
            cache.deleted(late.pop())
        return True

    branches = members(server, cache, settle).branches(Tier.LEAF)
    assert [m.node_id for m in branches] == ["b1", "b2"]
    assert cache.fresh(FOLDER) == (False, None)  # read again, not trusted as edited
    server.sent.clear()
    again = members(server, cache, settle).branches(Tier.LEAF)
    assert [m.node_id for m in again] == ["b1", "b2"]
    assert cache.fresh(FOLDER) == (True, Listing(("b1", "b2"), 4))


def test_a_list_whose_events_could_not_be_settled_is_not_kept():
    cache = ReadCache()
    server = Server(["b1"], cversion=1)
    members(server, cache, lambda: False).branches(Tier.LEAF)
    assert cache.fresh(FOLDER) == (False, None)


def test_a_full_read_lists_the_folder_again_only_when_its_child_version_moved():
    cache, server = ReadCache(), Server(["b1", "b2"], cversion=2)
    store = members(server, cache, lambda: True)
    store.branches(Tier.LEAF)
    cache.clear()
    server.sent.clear()
    store.branches(Tier.LEAF)
    assert "get_children_async" not in server.sent
    cache.clear()
    server.branches, server.cversion = ["b1"], 3
    assert [m.node_id for m in store.branches(Tier.LEAF)] == ["b1"]
