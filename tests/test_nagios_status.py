"""The test harness's reader of Nagios's status file (integration/test_nagios.py relies on it)."""

from __future__ import annotations

from pathlib import Path

from prodstate.testing.nagios import Nagios, parse_status

STATUS = """\
# NAGIOS STATUS FILE
info {
\tcreated=1700000000
\tversion=4.4.6
\t}

servicestatus {
\thost_name=localhost
\tservice_description=prodstate heartbeat
\thas_been_checked=1
\tcurrent_state=1
\tplugin_output=PRODSTATE WARNING - heartbeat 10m 0s old (127.0.0.1:6379)
\tperformance_data=staleness=600.002s;60;3600;0
\t}

servicestatus {
\thost_name=localhost
\tservice_description=not yet
\thas_been_checked=0
\tcurrent_state=0
\t}
"""


def test_blocks_and_fields():
    blocks = parse_status(STATUS)
    assert [b[""] for b in blocks] == ["info", "servicestatus", "servicestatus"]
    assert blocks[1]["performance_data"] == "staleness=600.002s;60;3600;0"  # '=' inside kept


def test_services_show_only_checked_ones_with_their_state(tmp_path: Path):
    nagios = Nagios(tmp_path, {"prodstate heartbeat": ["/bin/true"]})
    assert nagios.services() == {}  # no status file yet
    nagios.status_path.write_text(STATUS)
    assert nagios.services() == {
        "prodstate heartbeat": (
            "WARNING",
            "PRODSTATE WARNING - heartbeat 10m 0s old (127.0.0.1:6379)",
            "staleness=600.002s;60;3600;0",
        )
    }
    config = (nagios.workdir / "objects.cfg").read_text()
    assert "command_line /bin/true" in config and "check_interval 1" in config
