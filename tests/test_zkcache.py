"""ReadCache as pure code: what is fetched again, and when."""

from __future__ import annotations

import pytest

from prodstate.agent.config import AgentConfig
from prodstate.core.model import Tier
from prodstate.zk.cache import Listing, ReadCache, Uncached


class Loader:
    """A load function that counts its calls and can run code mid-read (a watch firing)."""

    def __init__(self, value: object, during: object = None) -> None:
        self.value = value
        self.calls = 0
        self.during = during

    def __call__(self) -> object:
        self.calls += 1
        if callable(self.during):
            self.during()
        return self.value


def test_a_clean_path_is_read_once():
    cache, load = ReadCache(), Loader("a")
    assert [cache.read("/p", load) for _ in range(3)] == ["a", "a", "a"]
    assert load.calls == 1


def test_a_fired_watch_makes_the_next_read_fetch_again():
    cache = ReadCache()
    cache.read("/p", Loader("old"))
    cache.invalidate("/p")
    assert cache.read("/p", Loader("new")) == "new"
    assert cache.fresh("/p") == (True, "new")


def test_a_watch_firing_during_the_read_is_not_lost():
    cache = ReadCache()
    load = Loader("read", during=lambda: cache.invalidate("/p"))
    assert cache.read("/p", load) == "read"
    assert cache.fresh("/p") == (False, None)
    assert cache.read("/p", Loader("again")) == "again"


def test_a_watch_firing_during_the_first_read_of_a_path_is_not_lost():
    cache = ReadCache()
    cache.read("/p", Loader("first", during=lambda: cache.invalidate("/p")))
    load = Loader("second")
    cache.read("/p", load)
    assert load.calls == 1


def test_an_uncached_value_is_returned_but_read_again_next_time():
    cache = ReadCache()
    assert cache.read("/gone", Loader(Uncached(None))) is None
    load = Loader("back")
    assert cache.read("/gone", load) == "back"
    assert load.calls == 1


def test_an_uncached_value_replaces_an_older_entry():
    cache = ReadCache()
    cache.read("/p", Loader("was"))
    cache.invalidate("/p")
    cache.read("/p", Loader(Uncached(None)))
    assert cache.fresh("/p") == (False, None)


def test_clear_during_a_read_keeps_that_read_out_of_the_cache():
    cache = ReadCache()
    assert cache.read("/p", Loader("stale", during=cache.clear)) == "stale"
    assert len(cache) == 0


def test_a_session_event_forgets_everything():
    cache = ReadCache()
    cache.read("/a", Loader(1))
    cache.read("/b", Loader(2))
    cache.invalidate(None)
    assert len(cache) == 0


def test_a_failed_read_forgets_everything():
    cache = ReadCache()
    cache.read("/a", Loader(1))

    def fail() -> object:
        raise OSError("connection lost")

    with pytest.raises(OSError):
        cache.read("/b", fail)
    assert cache.fresh("/a") == (False, None)


def test_forget_drops_removed_children_only():
    cache = ReadCache()
    for path in ("/m", "/m/a", "/m/b", "/m/b/deeper", "/mx"):
        cache.read(path, Loader(path))
    assert sorted(cache.cached_under("/m")) == ["/m/a", "/m/b"]
    cache.forget(["/m/a"])
    assert sorted(cache.cached_under("/m")) == ["/m/b"]
    assert cache.fresh("/m/b/deeper") == (True, "/m/b/deeper")


def test_keep_stores_what_the_agent_wrote_until_cleared():
    cache = ReadCache()
    cache.read("/own", Loader("read"))
    cache.invalidate("/own")  # a write of its own, or a watch
    cache.keep("/own", "written")
    assert cache.fresh("/own") == (True, "written")
    assert cache.read("/own", Loader("not read")) == "written"
    cache.clear()  # a new session, a dropped connection or a full read: read it again
    assert cache.fresh("/own") == (False, None)


def test_a_deleted_child_leaves_its_folders_listing_without_a_read():
    cache = ReadCache()
    cache.read("/m", Loader(Listing(("a", "b"), cversion=7)))
    cache.read("/m/a", Loader("member a"))
    cache.deleted("/m/a")
    assert cache.fresh("/m") == (True, Listing(("b",), cversion=8))
    assert cache.fresh("/m/a") == (False, None)
    cache.deleted("/m/a")  # told again (a late event): nothing more changes
    assert cache.fresh("/m") == (True, Listing(("b",), cversion=8))


def test_a_deletion_during_the_read_of_its_folder_or_itself_is_not_lost():
    cache = ReadCache()
    listed = Loader(Listing(("a",), 1), during=lambda: cache.deleted("/m/a"))
    assert cache.read("/m", listed) == Listing(("a",), 1)  # what the read got back
    assert cache.fresh("/m") == (False, None)  # read again: it may have listed "a"
    cache.read("/m", Loader(Listing(("a",), 1)))
    member = Loader("member a", during=lambda: cache.deleted("/m/a"))
    assert cache.read("/m/a", member) == "member a"
    assert cache.fresh("/m/a") == (False, None)  # not stored as fresh: read again
    assert cache.fresh("/m")[0]


def test_a_deletion_under_a_folder_read_with_a_children_watch_leaves_its_list_alone():
    cache = ReadCache()
    cache.read("/m", Loader(["a", "b"]))  # its own children watch tells of the change
    cache.read("/m/a", Loader("member a"))
    cache.deleted("/m/a")
    assert (cache.fresh("/m"), cache.fresh("/m/a")) == ((True, ["a", "b"]), (False, None))


@pytest.mark.parametrize(
    ("tier", "configured", "expected"),
    [(Tier.LEAF, None, 60.0), (Tier.BRANCH, None, 60.0), (Tier.LEAF, 5.0, 5.0)],
)
def test_full_re_read_interval_defaults_to_a_minute(tier, configured, expected):
    config = AgentConfig("zk", "c", tier, "n1", "r:6379", "r:6379", refresh_interval=configured)
    assert config.full_read_interval == expected
