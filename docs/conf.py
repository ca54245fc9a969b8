"""Sphinx configuration of prodstate's documentation (``python -m sphinx -W -b html docs OUT``).

Plain Sphinx with its bundled theme: the build needs no network and no extension.
"""

import re
from pathlib import Path

_init = (Path(__file__).resolve().parent.parent / "prodstate" / "__init__.py").read_text()

project = "prodstate"
author = "the prodstate authors"
copyright = "the prodstate authors"
release = re.search(r'^__version__ = "(.+)"$', _init, re.M).group(1)
version = release

root_doc = "index"
exclude_patterns = ["_build"]
highlight_language = "none"

html_theme = "alabaster"
html_theme_options = {"description": "global state on every machine of a fleet"}
html_static_path: list[str] = []
