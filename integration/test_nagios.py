"""``prodstate check`` run by a real Nagios 4: the states Nagios records for the service."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from prodstate.redis.control import HEARTBEAT_KEY
from prodstate.testing import RedisServer, wait_until
from prodstate.testing.nagios import NAGIOS, Nagios

pytestmark = pytest.mark.skipif(
    shutil.which(NAGIOS) is None, reason=f"{NAGIOS} (Debian nagios4-core) is not installed"
)
PRODSTATE = str(Path(sys.executable).parent / "prodstate")


def set_heartbeat(server: RedisServer, age: float | None) -> None:
    """The heartbeat the root would have written ``age`` seconds ago (None: no heartbeat)."""
    with server.client() as conn:
        if age is None:
            conn.delete(HEARTBEAT_KEY)
        else:
            conn.set(HEARTBEAT_KEY, f"{time.time() - age:.6f}")


def test_nagios_reports_the_states_the_check_gives(tmp_path, redis_server):
    """OK, then WARNING and CRITICAL as the heartbeat ages, UNKNOWN without one, as Nagios's
    own status file shows them. The thresholds are wide (-w 60 -c 3600) so a state holds
    however long Nagios takes to run the next check."""
    check = [PRODSTATE, "check", "--redis", redis_server.address, "-w", "60", "-c", "3600"]
    set_heartbeat(redis_server, 0)
    nagios = Nagios(tmp_path, {"prodstate heartbeat": check}).start()
    try:
        seen = []
        for age, state in [(0, "OK"), (600, "WARNING"), (7200, "CRITICAL"), (None, "UNKNOWN")]:
            set_heartbeat(redis_server, age)

            def reported(state: str = state) -> tuple[str, str, str] | None:
                service = nagios.services().get("prodstate heartbeat")
                return service if service and service[0] == state else None

            status, output, perfdata = wait_until(reported, timeout=30, what=f"Nagios: {state}")
            seen.append(status)
            assert output.startswith(f"PRODSTATE {state} - "), output
            if age is not None:
                assert perfdata.startswith("staleness=") and perfdata.endswith("s;60;3600;0")
        assert seen == ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
    finally:
        nagios.stop()
    assert "Successfully shutdown" in nagios.log_tail()
