"""Templates: the read-only view, the sandbox, errors naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodstate.render import templates
from prodstate.render.templates import DataView, TemplateError, load


class Data:
    """The few redis-py read calls the view makes, over a dict (a unit-test double of the
    reads only: the view over a real Redis is tested in integration/test_render.py)."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def smembers(self, key: str) -> set[str]:
        return set(self.data.get(key, ()))

    def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.data.get(key, {}))

    def scan(self, cursor: int, match: str, count: int) -> tuple[int, list[str]]:
        import fnmatch

        return 0, [k for k in self.data if fnmatch.fnmatchcase(k, match)]

    def set(self, key: str, value: str) -> None:
        raise AssertionError("a template wrote")


def write(tmp_path: Path, text: str, name: str = "t.j2") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def view(data: dict) -> DataView:
    return DataView(Data(data))  # type: ignore[arg-type]


def test_a_template_reads_sets_sorted_hashes_and_keys(tmp_path: Path) -> None:
    source = write(
        tmp_path,
        "{% for m in smembers('s') %}{{ m }} {% endfor %}|{{ hgetall('h') }}|{{ keys('k:*') }}"
        "|{{ get('missing') is none }}\n",
    )
    data = {"s": {"c", "a", "b"}, "h": {"z": "1", "a": "2"}, "k:2": "x", "k:1": "y"}
    text = load(source).render(view(data))
    assert text == "a b c |{'a': '2', 'z': '1'}|['k:1', 'k:2']|True\n"


def test_includes_are_found_beside_the_template(tmp_path: Path) -> None:
    write(tmp_path, "[{{ get('a') }}]", "part.j2")
    assert load(write(tmp_path, "{% include 'part.j2' %}")).render(view({"a": "1"})) == "[1]"


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    source = write(tmp_path, "line one\n{% for x in %}\n")
    with pytest.raises(TemplateError) as caught:
        load(source)
    assert str(caught.value).startswith(f"{source}:2: ")


def test_a_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such template file"):
        load(str(tmp_path / "nope.j2"))


def test_an_undefined_name_is_an_error_at_its_line_not_an_empty_string(tmp_path: Path) -> None:
    source = write(tmp_path, "a\nb\n{{ upstreams }}\n")
    with pytest.raises(TemplateError) as caught:
        load(source).render(view({}))
    assert str(caught.value) == f"{source}:3: 'upstreams' is undefined"


def test_a_template_cannot_reach_the_connection_behind_the_view(tmp_path: Path) -> None:
    source = write(tmp_path, "{{ get.__self__._conn.set('x', '1') }}")
    with pytest.raises(TemplateError, match=r"unsafe|attribute"):
        load(source).render(view({}))


def test_keys_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "MAX_KEYS", 3)
    source = write(tmp_path, "{{ keys('*') }}")
    with pytest.raises(TemplateError, match="more than 3 keys"):
        load(source).render(view({f"k{i}": "v" for i in range(4)}))


def test_reads_per_render_are_bounded(tmp_path: Path) -> None:
    source = write(tmp_path, "{% for i in range(50) %}{{ get('a') }}{% endfor %}")
    with pytest.raises(TemplateError, match="at most 10 times"):
        load(source).render(DataView(Data({"a": "1"}), max_reads=10))  # type: ignore[arg-type]


def test_a_template_reads_a_settings_namespace_as_typed_values(tmp_path: Path) -> None:
    from prodstate.settings.keys import namespace_key
    from tests.settings.builders import SCHEMA, Replica

    errors = Replica("errors")
    errors.schema(SCHEMA)
    errors.set("page_threshold", 5)
    errors.set("hosts", ["a", "b"])
    source = write(
        tmp_path, "{% set c = config('errors') %}{{ c.page_threshold + 1 }} {{ c.hosts|join(',') }}"
    )
    data = {namespace_key("errors"): errors.hash}
    assert load(source).render(view(data)) == "6 a,b"
    with pytest.raises(TemplateError, match="no settings namespace 'nope'"):
        load(write(tmp_path, "{{ config('nope') }}", "n.j2")).render(view(data))
