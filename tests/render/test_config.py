"""Template configuration: the TOML file and the --template flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodstate.render.config import (
    ConfigError,
    TemplateSpec,
    check_destinations,
    parse_file,
    parse_flag,
)
from prodstate.render.debounce import Wait


def test_flags_take_source_destination_and_a_command_with_colons() -> None:
    assert parse_flag("a.j2:/etc/a.conf") == TemplateSpec("a.j2", "/etc/a.conf")
    spec = parse_flag("a.j2:/etc/a.conf:curl -X POST http://localhost:8080/reload", Wait(1, 2))
    assert spec.command == "curl -X POST http://localhost:8080/reload"
    assert spec.wait == Wait(1, 2)


@pytest.mark.parametrize("flag", ["a.j2", ":x", "a.j2:", " : "])
def test_a_bad_flag_is_refused(flag: str) -> None:
    with pytest.raises(ConfigError, match="SOURCE:DESTINATION"):
        parse_flag(flag)


def test_the_file_gives_defaults_and_per_template_settings(tmp_path: Path) -> None:
    path = tmp_path / "render.toml"
    path.write_text(
        'wait = "1s:5s"\ncommand_timeout = "10s"\n'
        '[[template]]\nsource = "a.j2"\ndestination = "/etc/a"\ncommand = "reload a"\n'
        '[[template]]\nsource = "b.j2"\ndestination = "/etc/b"\nwait = "0"\n'
        'perms = "0600"\ncommand_timeout = 3\n'
    )
    a, b = parse_file(str(path))
    # Relative paths are the file's folder's.
    assert a == TemplateSpec(f"{tmp_path}/a.j2", "/etc/a", "reload a", Wait(1, 5), 0o644, 10.0)
    assert b == TemplateSpec(f"{tmp_path}/b.j2", "/etc/b", "", Wait(0, 0), 0o600, 3.0)
    # The command line's --wait is every template's.
    assert {s.wait for s in parse_file(str(path), Wait(2, 3))} == {Wait(2, 3)}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[[template]]\nsource = 'a'\n", "needs both source and destination"),
        (
            "[[template]]\nsource='a'\ndestination='b'\nwiat='1s'\n",
            "template 1: unknown setting(s) wiat",
        ),
        ("waitt = '1s'\n", "unknown setting(s) waitt"),
        ("[[template]]\nsource='a'\ndestination='b'\nwait='9s:1s'\n", "min <= max"),
        ("[[template]]\nsource='a'\ndestination='b'\nperms='rw'\n", "octal"),
        ("[[template]]\nsource='a'\ndestination='b'\nperms=644\n", "octal"),
        ("[[template]]\nsource='a'\ndestination='b'\ncommand_timeout='0'\n", "command_timeout"),
        ("[[template]]\nsource=1\ndestination='b'\n", "source must be a string"),
        ("template = 3\n", "array of tables"),
        ("x = \n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "render.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        parse_file(str(path))
    message = str(caught.value)
    assert words in message and str(path) in message and "\n" not in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.toml"):
        parse_file(str(tmp_path / "nope.toml"))


def test_two_templates_may_not_write_one_file() -> None:
    with pytest.raises(ConfigError, match="two templates write /etc/a"):
        check_destinations([TemplateSpec("a", "/etc/a"), TemplateSpec("b", "/etc/a")])
