"""The agent adds keyspace notifications to the flags an operator set, never replacing them."""

from __future__ import annotations

import pytest

from prodstate.agent.config import AgentConfig
from prodstate.core.model import Tier
from prodstate.redis.control import merge_event_flags
from prodstate.redis.users import KEYSPACE_CHANNELS, RULES


@pytest.mark.parametrize(
    ("current", "merged"),
    [
        ("", "AK"),  # Redis's default: off
        ("AK", "AK"),  # already as the agent sets it: left alone
        ("xE", "AKE"),  # an operator's expiry events kept
        ("KEA", "AKE"),
        ("Kgn", "AKn"),
        ("g$lshzxetdK", "AK"),
    ],
)
def test_the_needed_flags_are_added_as_redis_writes_them_back(current: str, merged: str) -> None:
    assert merge_event_flags(current, "KA") == merged


def test_the_agent_asks_for_every_event_and_the_reader_may_subscribe_to_them() -> None:
    config = AgentConfig("zk:2181", "c", Tier.LEAF, "n1", "127.0.0.1:6379", "127.0.0.1:6379")
    assert config.redis_settings()["notify-keyspace-events"] == "KA"
    assert f"&{KEYSPACE_CHANNELS}" in RULES["reader"] and "+psubscribe" in RULES["reader"]
    assert "+publish" not in RULES["reader"]
