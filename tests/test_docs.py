"""The READMEs and docs/ are valid reStructuredText (they are the manual)."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import pytest

ROOT = Path(__file__).resolve().parent.parent


DOCS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.rst"))


@pytest.mark.parametrize("name", ["README.rst", "benchmarks/README.rst", *DOCS])
def test_rst_renders_without_warnings(name):
    text = (ROOT / name).read_text()
    docutils.core.publish_string(
        text, writer_name="null", settings_overrides={"report_level": 2, "halt_level": 2}
    )
