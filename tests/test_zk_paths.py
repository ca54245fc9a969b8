"""The znode layout's pure helpers: election znode names and their order."""

from __future__ import annotations

import uuid

from prodstate.zk.paths import (
    CANDIDATE_PREFIX,
    SEQUENCE_DIGITS,
    candidate_prefix,
    ordered_candidates,
)


def test_old_and_protected_candidates_are_ordered_by_sequence_not_by_name():
    children = [
        "n_ffffffff_0000000003",
        "n_0000000004",
        "n_00aa_0000000001",
        "n_0000000002",
        "lock-0000000000",  # not a candidate
    ]
    assert ordered_candidates(children) == [
        "n_00aa_0000000001",
        "n_0000000002",
        "n_ffffffff_0000000003",
        "n_0000000004",
    ]
    assert ordered_candidates([]) == []


def test_a_protected_name_keeps_the_prefix_older_agents_list_and_ends_in_the_sequence():
    token = uuid.uuid4().hex
    name = candidate_prefix(token) + "0000000042"
    assert name.startswith(CANDIDATE_PREFIX) and token in name
    assert name[-SEQUENCE_DIGITS:] == "0000000042"
    assert ordered_candidates([name, "n_0000000041"]) == ["n_0000000041", name]
