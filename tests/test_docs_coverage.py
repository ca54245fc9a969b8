"""The documentation names what the code offers: every command, every agent option."""

from __future__ import annotations

import re
from pathlib import Path

import click

from prodstate.cli import COMMANDS, load_command

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_command_is_in_the_commands_page():
    page = (DOCS / "user" / "commands.rst").read_text()
    named = set(re.findall(r"``([a-z]+)``", page))
    assert set(COMMANDS) - named == set()


def test_every_agent_option_is_in_the_options_table():
    page = (DOCS / "operator" / "agent.rst").read_text()
    rows = set(re.findall(r"^``(--[a-z-]+)``", page, re.MULTILINE))
    options = {
        name
        for param in load_command("agent").params
        if isinstance(param, click.Option) and not param.hidden
        for name in param.opts
        if name.startswith("--") and name not in ("--help", "--version")
    }
    assert options - rows == set(), "options missing from docs/operator/agent.rst"
    assert rows - options == set(), "docs/operator/agent.rst lists options the agent lacks"
