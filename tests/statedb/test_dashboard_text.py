"""Record text made safe to look at: control and invisible characters as escapes, long
fields folded, every value escaped in the pages' HTML."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from prodstate.statedb.dashboard.render import shown, slug
from prodstate.statedb.dashboard.text import escape_of, fold, segments


def test_control_and_invisible_characters_become_escapes():
    assert escape_of("\x1b") == "\\e" and escape_of("\r") == "\\r" and escape_of("\x00") == "\\0"
    assert escape_of("\x07") == "\\x07" and escape_of("\x7f") == "\\x7f"
    assert escape_of("\x85") == "\\x85"
    assert escape_of("\u202e") == "U+202E" and escape_of("\u200b") == "U+200B"
    assert escape_of("\ufeff") == "U+FEFF" and escape_of("\u2028") == "U+2028"
    for kept in ("\n", "\t", "a", "é", "日", "😀", " "):
        assert escape_of(kept) is None


def test_segments_keep_the_text_in_order():
    assert segments("a\x1b[31mb\u202e") == [
        ("a", False),
        ("\\e", True),
        ("[31mb", False),
        ("U+202E", True),
    ]
    assert segments("") == []
    assert segments("two\nlines") == [("two\nlines", False)]


def test_shown_escapes_markup_and_marks_control_characters():
    html = str(shown('<script>alert("x")</script>\x1b'))
    assert html == (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
        '<span class="ctl" title="control character">\\e</span>'
    )
    assert str(shown(None)) == "-"


@given(st.text())
def test_shown_never_lets_markup_or_control_characters_through(text):
    html = str(shown(text))
    stripped = html.replace('<span class="ctl" title="control character">', "").replace(
        "</span>", ""
    )
    assert "<" not in stripped and ">" not in stripped and '"' not in stripped
    assert all(escape_of(c) is None for c in stripped)


def test_short_fields_are_not_folded():
    kept = fold("one line", chars=20, lines=2)
    assert not kept.folded and kept.head == "one line" and kept.summary == "8 characters"


def test_long_fields_fold_to_their_first_lines_and_characters():
    many = fold("a\nb\nc\nd", chars=100, lines=2)
    assert many.folded and many.head == "a\nb…" and many.summary == "4 lines, 7 characters"
    wide = fold("x" * 5000, chars=160, lines=2)
    assert wide.folded and wide.head == "x" * 160 + "…" and wide.full == "x" * 5000
    assert wide.summary == "5,000 characters"


def test_slugs_are_safe_in_an_id():
    assert slug('a b"<>/x') == "a_b____x" and len(slug("y" * 500)) == 80
