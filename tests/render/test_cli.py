"""``prodstate render`` and ``watch``: bad input is one line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from prodstate.cli import cli
from prodstate.testing.ports import free_port


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_render_needs_templates() -> None:
    code, out = run("render", "--once")
    assert code == 2
    assert one_line(out) == (
        "prodstate: no templates: give --template SRC:DEST[:CMD] or --templates FILE"
    )


@pytest.mark.parametrize(
    ("files", "args", "words"),
    [
        ({"t.j2": "ok\n{% if %}\n"}, ["--template", "{d}/t.j2:{d}/out"], "{d}/t.j2:2: "),
        ({}, ["--template", "{d}/none.j2:{d}/out"], "{d}/none.j2: no such template file"),
        ({}, ["--template", "nodest"], "is not SOURCE:DESTINATION[:COMMAND]"),
        ({"r.toml": "[[template]]\nsrc = 'a'\n"}, ["--templates", "{d}/r.toml"], "unknown setting"),
        ({"t.j2": "x"}, ["--template", "{d}/t.j2:{d}/o", "--template", "{d}/t.j2:{d}/o"], "two"),
    ],
)
def test_render_refuses_bad_templates_at_start(
    tmp_path: Path, files: dict[str, str], args: list[str], words: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [a.format(d=tmp_path) for a in args]
    code, out = run("render", "--once", "--redis", "127.0.0.1:1", *args)
    assert code == 2
    line = one_line(out)
    assert line.startswith("prodstate: ") and words.format(d=tmp_path) in line


def test_render_once_from_an_unreachable_redis_keeps_the_file(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ get('a') }}")
    (tmp_path / "out").write_text("last good\n")
    address = f"127.0.0.1:{free_port()}"
    code, out = run(
        "render", "--once", "--redis", address, "--template", f"{tmp_path}/t.j2:{tmp_path}/out"
    )
    assert code == 1
    assert (
        out.strip().splitlines()[-1]
        == "prodstate: not every template was rendered (see the log above)"
    )
    assert (tmp_path / "out").read_text() == "last good\n"


def test_render_refuses_a_bad_wait() -> None:
    code, out = run("render", "--wait", "9s:1s", "--template", "a:b")
    assert code == 2 and "min <= max" in out and "Traceback" not in out


def test_watch_of_an_unreachable_redis_is_one_line() -> None:
    address = f"127.0.0.1:{free_port()}"
    code, out = run("watch", "--redis", address, "--timeout", "1", "k")
    assert code == 2
    assert one_line(out).startswith(f"prodstate: watching k in Redis at {address}: ")
