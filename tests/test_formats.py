"""Mixed versions: the member, root and epoch znodes of the previous release (committed
fixtures) read with this one; a format newer than this release reads is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prodstate.core.model import (
    FORMAT,
    READS_FORMAT,
    DataError,
    Lineage,
    Member,
    RootRecord,
    Tier,
)

FIXTURES = Path(__file__).parent / "fixtures" / "znodes"
DECODERS = {"member": Member.from_json, "root": RootRecord.from_json, "epoch": Lineage.from_json}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def test_the_previous_releases_znodes_read_as_they_meant():
    assert Member.from_json(fixture("member-format0.json")) == Member(
        "branch2", Tier.BRANCH, "10.0.0.2:6379", True, "0.9.0", fresh=True
    )
    old = Member.from_json(fixture("member-before-freshness.json"))
    assert (old.fresh, old.judging, old.avoiding) == (True, False, ())  # says nothing: fresh
    root = RootRecord.from_json(fixture("root-format0.json"), owner_session=9)
    assert (root.node_id, root.epoch, root.previous, root.owner_session) == (
        "branch1", 7, "10.0.0.3:6379", 9,
    )  # fmt: skip
    assert Lineage.from_json(fixture("epoch-format0.json")) == Lineage(
        7, "branch1", "10.0.0.1:6379", ("a" * 40, "c" * 40)
    )


@pytest.mark.parametrize("name", ["member-format0.json", "root-format0.json", "epoch-format0.json"])
def test_this_release_writes_every_field_the_previous_one_wrote(name):
    """The reverse rule: an agent of the previous release reads what this one writes,
    because fields are only added (it ignores those it does not know)."""
    old = json.loads(fixture(name))
    written = json.loads(DECODERS[name.split("-")[0]](fixture(name)).to_json())
    assert set(old) <= set(written) and written["format"] == FORMAT
    assert {k: written[k] for k in old} == old


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_a_newer_format_is_refused_with_upgrade_advice(kind):
    decode = DECODERS[kind]
    base = json.loads(fixture(f"{kind}-format0.json"))
    newer = json.dumps({**base, "format": READS_FORMAT + 1}).encode()
    with pytest.raises(DataError, match=r"is newer than this agent reads .*: upgrade it"):
        decode(newer)
    with pytest.raises(DataError, match="field 'format'"):
        decode(json.dumps({**base, "format": "1"}).encode())
