"""The layout's boundaries: a pure core, and commands that import only what they use."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import prodstate
import prodstate.core

PACKAGE = Path(prodstate.__file__).parent
#: What the decisions must never depend on: they are computed from values, not read.
IO_LIBRARIES = ("kazoo", "redis", "click", "prometheus_client")
#: The template libraries: only the dashboard and ``prodstate render`` may import them.
DASHBOARD_LIBRARIES = ("jinja2", "markupsafe")


def imported_after(code: str) -> list[str]:
    """The top-level names of every module a fresh interpreter has loaded after ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[-1])  # after whatever the code printed


def loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in prefixes or m.startswith(prefixes)]


def test_the_core_imports_no_io_library():
    names = [f"prodstate.core.{m.name}" for m in pkgutil.iter_modules(prodstate.core.__path__)]
    assert "prodstate.core.decide" in names and "prodstate.core.model" in names
    modules = imported_after("\n".join(f"import {name}" for name in names))
    assert loaded(modules, IO_LIBRARIES) == []


def test_check_and_get_load_neither_zookeeper_nor_the_agent_nor_the_harness():
    for command in ("check", "get"):
        modules = imported_after(
            f"from prodstate.cli import load_command\nload_command({command!r})"
        )
        unwanted = ("kazoo", "prometheus_client", "prodstate.agent", "prodstate.testing")
        unwanted += ("prodstate.statedb", "prodstate.zk", "prodstate.cli.dev")
        unwanted += ("prodstate.settings", "jsonschema", "prodstate.render")
        unwanted += DASHBOARD_LIBRARIES
        assert loaded(modules, unwanted) == [], command


def test_the_agent_runs_without_redis_py():
    """redis-py costs 20 MiB and a fifth of a second per process: the agent speaks RESP
    itself (prodstate.redis.link), on every machine of the fleet."""
    modules = imported_after("from prodstate.cli import load_command\nload_command('agent')")
    assert "prodstate.agent.loop" in modules
    assert loaded(modules, ("redis",)) == []


def test_reading_settings_loads_no_schema_library_and_no_zookeeper():
    modules = imported_after("import prodstate.client\nimport prodstate.settings.records")
    assert loaded(modules, ("jsonschema", "referencing", "kazoo", "click")) == []


#: What ``prodstate check`` and ``get`` must not load: each costs them more than their
#: whole budget's share (redis-py alone is several times Python's start-up).
HEAVY = ("redis", "click", "kazoo", "prometheus_client", "dataclasses", "ssl", "tomllib")
HEAVY += ("prodstate.core.model", "prodstate.client", "prodstate.redis.control")
HEAVY += ("http.client", "email")


def test_check_and_get_run_without_redis_py_click_or_the_records():
    """Run as the console script runs them (here against a port where nothing listens)."""
    for argv in (["check", "-t", "2"], ["get", "key"]):
        code = (
            f"import sys\nsys.argv = ['prodstate', *{argv!r}, '--redis', '127.0.0.1:1']\n"
            "from prodstate.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (2, 3), exc.code\n"
            # and what --agent loads once Redis has answered:
            "from prodstate.ops.check import agent_freshness\n"
            "assert agent_freshness('127.0.0.1:1', 1)[0] is None"
        )
        modules = imported_after(code)
        assert "prodstate.redis.resp" in modules, argv
        assert loaded(modules, HEAVY) == [], argv


def test_only_the_dev_command_imports_the_test_harness():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("testing/") or relative == "cli/dev.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "prodstate.testing" or n.startswith("prodstate.testing.") for n in names):
                importers.append(relative)
    assert importers == []


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_only_the_dashboard_and_the_renderer_import_the_template_libraries():
    importers = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(n.split(".")[0] in DASHBOARD_LIBRARIES for n in _imports(path))
    )
    assert importers == ["render/templates.py", "statedb/dashboard/render.py"]


def test_every_command_of_the_table_loads():
    from prodstate.cli import COMMANDS, cli, load_command

    for name in COMMANDS:
        assert load_command(name).name == name
    assert sorted(cli.list_commands(None)) == sorted(COMMANDS)  # type: ignore[arg-type]
