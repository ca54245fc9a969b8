"""The benchmark scripts' modules for unit tests, imported by their bare names as the scripts
import each other (benchmarks/ is the scripts' first folder on ``sys.path``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` as module ``NAME`` (the folder is appended to ``sys.path``, so
    it shadows no installed module)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    return importlib.import_module(name)
