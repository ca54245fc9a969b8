"""Rendezvous (HRW) parent choice and the reaction jitter."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodstate.core.rendezvous import choose_parent, full_read_delay, reaction_delay, score

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20
)
# Real generators: hypothesis's own Random may return the closed end of uniform(a, b).
seeded_randoms = st.integers(0, 2**32).map(random.Random)
branch_sets = st.lists(names, min_size=1, max_size=12, unique=True)
leaf_sets = st.lists(names, min_size=1, max_size=40, unique=True)


def assignment(leaves: list[str], branches: list[str]) -> dict[str, str | None]:
    return {leaf: choose_parent(leaf, branches) for leaf in leaves}


def test_score_is_a_stable_64_bit_weight():
    # Every agent in the fleet must rank branches the same way, across processes, Python
    # versions and prodstate releases (a new hash would move every leaf during an upgrade):
    # the weight is a fixed hash, pinned here, not Python's salted hash().
    assert score("leaf-1", "branch-1") == 7144701519067320775
    assert choose_parent("leaf-1", [f"branch-{i}" for i in range(10)]) == "branch-0"
    assert score("leaf-1", "branch-1") != score("branch-1", "leaf-1")
    assert score("a", "bc") != score("ab", "c")


@given(names, branch_sets)
def test_choice_is_deterministic(leaf, branches):
    assert choose_parent(leaf, branches) == choose_parent(leaf, list(branches))


@given(names)
def test_no_branch_means_no_parent(leaf):
    assert choose_parent(leaf, []) is None
    assert choose_parent(leaf, iter(())) is None


@given(names, branch_sets, st.randoms(use_true_random=False))
def test_choice_is_a_given_branch_whatever_the_order(leaf, branches, rnd):
    chosen = choose_parent(leaf, branches)
    assert chosen in branches
    shuffled = list(branches)
    rnd.shuffle(shuffled)
    assert choose_parent(leaf, shuffled) == chosen
    assert choose_parent(leaf, reversed(branches)) == chosen
    assert choose_parent(leaf, iter(set(branches))) == chosen


@given(names, branch_sets)
def test_choice_is_the_top_scored_branch(leaf, branches):
    chosen = choose_parent(leaf, branches)
    assert score(leaf, chosen) == max(score(leaf, b) for b in branches)


@given(names, branch_sets)
def test_duplicates_do_not_change_the_choice(leaf, branches):
    assert choose_parent(leaf, branches + branches[::-1]) == choose_parent(leaf, branches)


@given(leaf_sets, st.lists(names, min_size=2, max_size=12, unique=True), st.data())
def test_a_branch_leaving_moves_only_its_own_leaves(leaves, branches, data):
    gone = data.draw(st.sampled_from(branches))
    remaining = [b for b in branches if b != gone]
    before = assignment(leaves, branches)
    after = assignment(leaves, remaining)
    for leaf in leaves:
        if before[leaf] == gone:
            assert after[leaf] in remaining
        else:
            assert after[leaf] == before[leaf], f"{leaf} moved though its parent stayed"


@given(leaf_sets, branch_sets, names)
def test_a_branch_joining_takes_only_the_leaves_it_wins(leaves, branches, new):
    if new in branches:
        branches = [b for b in branches if b != new]
    before = assignment(leaves, branches)
    after = assignment(leaves, [*branches, new])
    for leaf in leaves:
        if after[leaf] != before[leaf]:
            assert after[leaf] == new
            assert before[leaf] is None or score(leaf, new) > score(leaf, before[leaf])


LEAVES = [f"leaf-{i:05d}.example.net" for i in range(3000)]
BRANCHES = [f"branch-{i:02d}.example.net" for i in range(10)]


def test_leaves_spread_evenly_over_branches():
    counts = Counter(choose_parent(leaf, BRANCHES) for leaf in LEAVES)
    mean = len(LEAVES) / len(BRANCHES)
    assert set(counts) == set(BRANCHES)
    for branch, count in counts.items():
        assert 0.75 * mean <= count <= 1.25 * mean, f"{branch} has {count} leaves, mean {mean}"


def test_a_leaving_branchs_leaves_spread_over_the_rest():
    before = {leaf: choose_parent(leaf, BRANCHES) for leaf in LEAVES}
    orphans = [leaf for leaf, parent in before.items() if parent == BRANCHES[0]]
    counts = Counter(choose_parent(leaf, BRANCHES[1:]) for leaf in orphans)
    assert set(counts) == set(BRANCHES[1:])
    mean = len(orphans) / (len(BRANCHES) - 1)
    assert max(counts.values()) <= 2 * mean


def test_a_joining_branch_takes_its_share():
    new = "branch-10.example.net"
    before = {leaf: choose_parent(leaf, BRANCHES) for leaf in LEAVES}
    after = {leaf: choose_parent(leaf, [*BRANCHES, new]) for leaf in LEAVES}
    moved = [leaf for leaf in LEAVES if before[leaf] != after[leaf]]
    share = len(LEAVES) / (len(BRANCHES) + 1)
    assert 0.75 * share <= len(moved) <= 1.25 * share
    assert all(after[leaf] == new for leaf in moved)


# --- reaction_delay -----------------------------------------------------------------------


@given(
    st.floats(min_value=1e-300, max_value=1e6, allow_nan=False, allow_infinity=False),
    seeded_randoms,
)
def test_delay_is_in_range(max_jitter, rng):
    delay = reaction_delay(max_jitter, rng)
    assert 0 <= delay < max_jitter


@given(st.floats(max_value=0, allow_nan=False), seeded_randoms)
def test_no_jitter_means_no_delay(max_jitter, rng):
    assert reaction_delay(max_jitter, rng) == 0.0
    assert reaction_delay(max_jitter) == 0.0


class _Extreme(random.Random):
    """A generator stuck at one end of [0, 1)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("max_jitter", [1.0, 0.1, 3.0, 7.3, 1e-9, 12345.678])
def test_delay_stays_below_max_at_the_top_of_the_generator(max_jitter):
    top = math.nextafter(1.0, 0.0)
    assert 0 <= reaction_delay(max_jitter, _Extreme(top)) < max_jitter
    assert reaction_delay(max_jitter, _Extreme(0.0)) == 0.0


def test_delay_uses_the_given_generator():
    a = [reaction_delay(5.0, random.Random(7)) for _ in range(3)]
    b = [reaction_delay(5.0, random.Random(7)) for _ in range(3)]
    assert a == b
    spread = {reaction_delay(5.0, random.Random(seed)) for seed in range(50)}
    assert len(spread) == 50
    assert min(spread) < 1.0 and max(spread) > 4.0


# --- full_read_delay ----------------------------------------------------------------------


def test_agents_started_together_spread_their_full_reads_over_the_interval():
    rng = random.Random(7)
    firsts = [full_read_delay(60.0, first=True, rng=rng) for _ in range(1000)]
    assert all(0 <= d <= 60.0 for d in firsts)
    # Spread over the whole minute: each tenth of it holds some of them.
    assert {int(d // 6) for d in firsts} == set(range(10))
    assert full_read_delay(60.0, first=False, rng=rng) == 60.0  # then once an interval
