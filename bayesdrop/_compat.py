"""Old import paths that still work, with a ``DeprecationWarning`` (private)."""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

#: Module paths that moved: old -> new (and the release that moved them).
MOVED_MODULES = {"bayesdrop.sampling": ("bayesdrop.montecarlo", "0.2")}


class MovedModule(types.ModuleType):
    """A stand-in for a moved module: every attribute read warns and comes from the new module."""

    def __init__(self, old: str, new: str, release: str) -> None:
        super().__init__(old)
        self._new, self._release = new, release

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        warnings.warn(
            f"{self.__name__} moved to {self._new} in bayesdrop {self._release}: import {name} from {self._new} "
            "(or from bayesdrop).",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(self._new), name)


def install_moved_modules() -> None:
    """Register the old paths in ``sys.modules`` (``from bayesdrop.sampling import sample`` keeps working)."""
    for old, (new, release) in MOVED_MODULES.items():
        sys.modules.setdefault(old, MovedModule(old, new, release))
