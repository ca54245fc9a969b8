"""The systemd units of packaging/systemd pass ``systemd-analyze verify`` without a warning.

``verify`` requires the ExecStart binary to exist, and the units name the install path
of docs/install.rst (/opt/prodstate): each unit is verified as a copy whose ExecStart
names this environment's ``prodstate`` instead. ``verify`` exits 0 on most mistakes (an
unknown key, a bad value) and only prints them, so any line it prints about a unit fails
the test.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "packaging" / "systemd"
INSTALLED = "/opt/prodstate/bin/prodstate"


def unit_names() -> list[str]:
    return sorted(p.name for p in UNITS.glob("*.service"))


def verify(path: Path) -> str:
    """What ``systemd-analyze verify`` says about ``path``: the lines naming it (not those
    about the machine's own units), and its exit status unless 0."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/bootstrap.sh installs systemd"
    run = subprocess.run(
        [analyze, "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )
    lines = (run.stdout + run.stderr).splitlines()
    said = "\n".join(line for line in lines if path.name in line)
    return said if run.returncode == 0 else f"{said}\nexit status {run.returncode}"


def test_the_units_are_there():
    assert unit_names() == [
        "prodstate-agent.service",
        "prodstate-agent@.service",
        "prodstate-web.service",
    ]


@pytest.mark.parametrize("name", unit_names())
def test_unit_verifies_without_warnings(name, tmp_path):
    binary = Path(sys.executable).parent / "prodstate"
    assert binary.exists(), f"{binary} missing: install prodstate in this environment"
    text = (UNITS / name).read_text()
    assert f"ExecStart={INSTALLED} " in text
    copies = [tmp_path / name]
    if name.endswith("@.service"):
        copies.append(tmp_path / name.replace("@.", "@main."))  # specifiers with an instance
    for copy in copies:
        copy.write_text(text.replace(INSTALLED, str(binary)))
        assert verify(copy) == ""


def test_verify_reports_a_mistake(tmp_path):
    """The check above can fail: a misspelt key is reported, though verify exits 0."""
    binary = Path(sys.executable).parent / "prodstate"
    text = (UNITS / "prodstate-web.service").read_text().replace(INSTALLED, str(binary))
    bad = tmp_path / "prodstate-web.service"
    bad.write_text(text.replace("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key 'NoNewPrivilege'" in verify(bad)
