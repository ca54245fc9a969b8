"""The READMEs and the install guide are valid reStructuredText on their own (the README is
the package's long description); tests/test_docs_build.py builds the whole of docs/."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["README.rst", "benchmarks/README.rst", "docs/install.rst"])
def test_rst_renders_without_warnings(name):
    text = (ROOT / name).read_text()
    docutils.core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 2})
