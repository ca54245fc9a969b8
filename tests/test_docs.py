"""The READMEs, the install guide and the docs are valid reStructuredText (they are the
manual)."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "name",
    [
        "README.rst",
        "benchmarks/README.rst",
        "docs/install.rst",
        "docs/configuration.rst",
        "docs/settings.rst",
        "docs/render.rst",
        "docs/dashboard.rst",
    ],
)
def test_rst_renders_without_warnings(name):
    text = (ROOT / name).read_text()
    docutils.core.publish_string(
        text, writer_name="null", settings_overrides={"report_level": 2, "halt_level": 2}
    )
