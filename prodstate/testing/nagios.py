"""A private Nagios 4 (Debian's ``nagios4-core``) that runs service checks and reports
their states in its own status file, from a generated configuration in a work directory.

One host (``localhost``, never checked: Nagios takes it as up) and the services given,
each a command line run every ``interval`` seconds (``interval_length=1``), one attempt to
a hard state, notifications off.
"""

from __future__ import annotations

import getpass
import os
import shlex
from pathlib import Path

from prodstate.testing.process import ManagedProcess

NAGIOS = os.environ.get("PRODSTATE_NAGIOS", "/usr/sbin/nagios4")
#: Nagios's numbers for service states, as its status file writes them.
STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
#: The longest status file read, in bytes.
MAX_STATUS = 4 * 1024 * 1024


class Nagios(ManagedProcess):
    """Nagios in the foreground; ``services``: service description -> command line."""

    def __init__(self, workdir: Path, services: dict[str, list[str]], *, interval: int = 1) -> None:
        workdir = Path(workdir) / "nagios"
        (workdir / "checkresults").mkdir(parents=True, exist_ok=True)
        self.status_path = workdir / "status.dat"
        user = getpass.getuser()
        main = {
            "log_file": workdir / "nagios.log",
            "cfg_file": workdir / "objects.cfg",
            "status_file": self.status_path,
            "status_update_interval": 1,
            "check_result_path": workdir / "checkresults",
            "check_result_reaper_frequency": 1,
            "lock_file": workdir / "nagios.lock",
            "temp_file": workdir / "nagios.tmp",
            "temp_path": workdir,
            "state_retention_file": workdir / "retention.dat",
            "retain_state_information": 0,
            "object_cache_file": workdir / "objects.cache",
            "precached_object_file": workdir / "objects.precache",
            "nagios_user": user,
            "nagios_group": user,
            "check_external_commands": 0,
            "command_file": workdir / "nagios.cmd",
            "query_socket": workdir / "nagios.qh",  # its default is one path for the machine
            "enable_notifications": 0,
            "interval_length": 1,
            "max_service_check_spread": 1,
            "service_inter_check_delay_method": "n",
            "use_syslog": 0,
            "log_rotation_method": "n",
        }
        (workdir / "nagios.cfg").write_text("".join(f"{k}={v}\n" for k, v in main.items()))
        objects = [
            _define(
                "timeperiod",
                timeperiod_name="always",
                alias="always",
                **{day: "00:00-24:00" for day in _DAYS},
            ),
            _define(
                "contact",
                contact_name="nobody",
                host_notifications_enabled=0,
                service_notifications_enabled=0,
                host_notification_period="always",
                service_notification_period="always",
                host_notification_options="n",
                service_notification_options="n",
                host_notification_commands="noop",
                service_notification_commands="noop",
            ),
            _define("command", command_name="noop", command_line="/bin/true"),
            _define(
                "host",
                host_name="localhost",
                address="127.0.0.1",
                max_check_attempts=1,
                check_period="always",
                contacts="nobody",
                notification_period="always",
                active_checks_enabled=0,
            ),
        ]
        for n, (description, argv) in enumerate(services.items()):
            command = f"service{n}"
            objects.append(_define("command", command_name=command, command_line=shlex.join(argv)))
            objects.append(
                _define(
                    "service",
                    host_name="localhost",
                    service_description=description,
                    check_command=command,
                    check_interval=interval,
                    retry_interval=interval,
                    max_check_attempts=1,
                    check_period="always",
                    contacts="nobody",
                    notification_period="always",
                )
            )
        (workdir / "objects.cfg").write_text("\n".join(objects))
        super().__init__("nagios", [NAGIOS, str(workdir / "nagios.cfg")], workdir)

    def services(self) -> dict[str, tuple[str, str, str]]:
        """Each service's (state, plugin output, perfdata) in the status file, by description;
        empty until Nagios has written it, and a service not yet checked is left out."""
        try:
            with open(self.status_path, "rb") as handle:
                text = handle.read(MAX_STATUS).decode("utf-8", "replace")
        except FileNotFoundError:
            return {}
        found = {}
        for block in parse_status(text):
            if block.get("") != "servicestatus" or block.get("has_been_checked") != "1":
                continue
            state = STATES.get(int(block.get("current_state", "3")), "UNKNOWN")
            output = block.get("plugin_output", "")
            found[block.get("service_description", "")] = (
                state,
                output,
                block.get("performance_data", ""),
            )
        return found


_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def _define(kind: str, **fields: object) -> str:
    body = "".join(f"    {k} {v}\n" for k, v in fields.items())
    return f"define {kind} {{\n{body}}}\n"


def parse_status(text: str) -> list[dict[str, str]]:
    """The blocks of a Nagios status file (``name {`` ``key=value`` lines ``}``), each a
    dict of its fields with its name under ``""``."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.endswith("{") and current is None:
            current = {"": line[:-1].strip()}
        elif line == "}" and current is not None:
            blocks.append(current)
            current = None
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    return blocks
