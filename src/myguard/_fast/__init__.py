"""Compiled hot paths, each with a pure-Python twin of the same name plus ``_py``.

``load("framing")`` returns the compiled ``myguard._fast.framing`` when it is built and
its twin ``myguard._fast.framing_py`` otherwise, with a loud warning: a missing build
must never be a silent slowdown. ``MYGUARD_PURE=1`` forces the twins (used by tests
that compare both).
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

log = logging.getLogger("myguard.fast")


def load(name: str) -> ModuleType:
    """Return the compiled module ``name`` or, failing that, its pure-Python twin."""
    if os.environ.get("MYGUARD_PURE") != "1":
        try:
            return importlib.import_module(f"myguard._fast.{name}")
        except ImportError as exc:
            log.warning(
                "compiled myguard._fast.%s is not built (%s); using the slow pure-Python "
                "twin. Run scripts/bootstrap.sh or `python setup.py build_ext --inplace`.",
                name,
                exc,
            )
    return importlib.import_module(f"myguard._fast.{name}_py")


def twin(name: str) -> ModuleType:
    """The pure-Python twin of ``name``, for tests and benchmarks."""
    return importlib.import_module(f"myguard._fast.{name}_py")
