"""Back-off for actions refused for lack of rights."""

from __future__ import annotations

import pytest
from kazoo.exceptions import ConnectionLoss, NoAuthError

from prodstate.agent.backoff import Backoff, is_denied
from prodstate.redis.link import ReplyError
from prodstate.zk.store import StoreUnavailable


def test_refusals_double_the_wait_up_to_the_cap():
    b = Backoff(first=1.0, cap=5.0)
    delays = [b.refused("Register", now=float(i)) for i in range(5)]
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.remaining("Register", now=4.0) == 5.0
    assert b.remaining("Register", now=9.5) == 0.0


def test_each_action_has_its_own_wait_and_a_success_resets_it():
    b = Backoff(first=1.0, cap=30.0)
    b.refused("Register", now=0.0)
    b.refused("Register", now=1.0)
    assert b.remaining("JoinElection", now=1.0) == 0.0
    assert b.remaining("Register", now=1.5) == 1.5
    b.succeeded("Register")
    assert b.remaining("Register", now=1.5) == 0.0
    assert b.refused("Register", now=2.0) == 1.0


@pytest.mark.parametrize(("first", "cap"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)])
def test_nonsense_delays_are_refused(first, cap):
    with pytest.raises(ValueError, match="first"):
        Backoff(first=first, cap=cap)


def _raised_from(cause: BaseException) -> StoreUnavailable:
    try:
        raise StoreUnavailable("ZooKeeper request failed") from cause
    except StoreUnavailable as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "denied"),
    [
        (NoAuthError(), True),
        (_raised_from(NoAuthError()), True),
        (ReplyError("WRONGPASS invalid username-password pair"), True),
        (ReplyError("NOAUTH Authentication required."), True),
        (ReplyError("NOPERM User agent has no permissions to run the 'config' command"), True),
        (ReplyError("ERR syntax error"), False),
        (_raised_from(ConnectionLoss()), False),
        (StoreUnavailable("ZooKeeper suspended"), False),
        (ConnectionRefusedError("refused"), False),
        (None, False),
    ],
)
def test_only_refusals_for_lack_of_rights_count_as_denied(exc, denied):
    assert is_denied(exc) is denied
