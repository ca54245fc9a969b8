"""The layout of prodstate's znodes, named once; every reader and writer builds paths here.

Under ``/prodstate/<cluster>``::

    members/branch             its data is bumped by each branch's registration
    members/branch/<node-id>   ephemeral, JSON Member
    members/leaf/<node-id>     ephemeral, JSON Member
    election/n_<uuid>_<seq>    ephemeral sequential, data = node id (lowest <seq> leads)
    root                       ephemeral, JSON RootRecord, owned by the root's session
    epoch                      persistent, JSON Lineage (epoch, latest root, replids)
    maintenance/pause          persistent while set, JSON Pause (``prodstate pause``)
    maintenance/switchover     persistent while requested, JSON Switchover
    maintenance/drain-<node>   persistent while drained, JSON Drain (``prodstate drain``)
    statedb/locks/<name>       persistent, the state database's deploy locks
    statedb/deploying/<name>   kazoo Lock recipe, held while a service's deploy runs
    statedb/started/<name>     persistent while a deploy of the service has no outcome

Pure strings: no ZooKeeper client is needed to build them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prodstate.core.model import Tier, validate_node_id

#: The folder every cluster's znodes live under.
TOP = "/prodstate"
#: The persistent znodes of a cluster, relative to its base (created by its agents).
PERSISTENT = ("members/branch", "members/leaf", "election", "epoch", "maintenance")
#: The same with their parents, the base ("") first: the znodes whose ACL the agents keep.
GUARDED = ("", "members", "members/branch", "members/leaf", "election", "epoch", "maintenance")
#: The folders whose children others than the agents could make while they were open.
OPEN_FOLDERS = ("members/branch", "members/leaf", "election", "maintenance")
#: Children of ``maintenance``: the pause, the switchover request, one drain per branch.
PAUSE, SWITCHOVER, DRAIN_PREFIX = "pause", "switchover", "drain-"
#: Prefix of election znodes: ``election/n_<uuid hex>_0000000007`` (a protected create), or
#: plain ``n_0000000007``; both are ordered by their sequence.
CANDIDATE_PREFIX = "n_"
#: Digits of ZooKeeper's sequence counter, which ends every election znode's name.
SEQUENCE_DIGITS = 10


def candidate_prefix(token: str) -> str:
    """The name of one store's election znodes before their sequence: ``n_<token>_``."""
    return f"{CANDIDATE_PREFIX}{token}_"


def ordered_candidates(children: Iterable[str]) -> list[str]:
    """The election znodes among ``children`` by sequence, lowest (the leader) first,
    whatever their prefix: ``n_<seq>`` and ``n_<uuid hex>_<seq>`` alike."""
    candidates = (c for c in children if c.startswith(CANDIDATE_PREFIX))
    return sorted(candidates, key=lambda c: c[-SEQUENCE_DIGITS:])


@dataclass(frozen=True)
class Layout:
    """The paths of one cluster's znodes."""

    cluster: str

    def __post_init__(self) -> None:
        validate_node_id(self.cluster)

    @property
    def base(self) -> str:
        """``/prodstate/<cluster>``."""
        return f"{TOP}/{self.cluster}"

    def path(self, relative: str) -> str:
        """The absolute path of ``relative`` (e.g. ``"epoch"``; ``""`` for the base)."""
        return f"{self.base}/{relative}" if relative else self.base

    def members(self, tier: Tier | str) -> str:
        """The folder of the members of ``tier``."""
        return f"{self.base}/members/{Tier(tier)}"

    def member(self, tier: Tier | str, node_id: str) -> str:
        """The member znode of ``node_id`` in ``tier``."""
        return f"{self.members(tier)}/{node_id}"

    @property
    def election(self) -> str:
        """The folder of the root election's candidates."""
        return f"{self.base}/election"

    @property
    def root(self) -> str:
        """The ephemeral znode of the current root."""
        return f"{self.base}/root"

    @property
    def epoch(self) -> str:
        """The persistent znode of the lineage (epoch and replication ids)."""
        return f"{self.base}/epoch"

    @property
    def maintenance(self) -> str:
        """The folder of the maintenance records (one children read tells what is set)."""
        return f"{self.base}/maintenance"

    @property
    def pause(self) -> str:
        """The maintenance pause, while one is set."""
        return f"{self.maintenance}/{PAUSE}"

    @property
    def switchover(self) -> str:
        """The planned switchover, while one is requested."""
        return f"{self.maintenance}/{SWITCHOVER}"

    def drain(self, node_id: str) -> str:
        """The drain znode of branch ``node_id``."""
        return f"{self.maintenance}/{DRAIN_PREFIX}{validate_node_id(node_id)}"

    @property
    def statedb(self) -> str:
        """The state database's folder."""
        return f"{self.base}/statedb"

    @property
    def locks(self) -> str:
        """The folder of the deploy locks."""
        return f"{self.statedb}/locks"

    def lock(self, name: str) -> str:
        """The znode of the lock ``name``."""
        return f"{self.locks}/{name}"

    def deploying(self, service: str) -> str:
        """The folder of the session-bound mutex held while ``service`` is deployed."""
        return f"{self.statedb}/deploying/{service}"

    def started(self, service: str) -> str:
        """The record of the deploy of ``service`` started and not ended (no outcome yet)."""
        return f"{self.statedb}/started/{service}"
