"""Every docstring of the package is readable text: no control characters.

A backslash in a docstring that is not a raw string turns ``\\frac`` into a
form feed and ``\\varphi`` into a vertical tab; this walks every module,
class, function and method of the package.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import bayesdrop


def _documented():
    for info in pkgutil.walk_packages(bayesdrop.__path__, "bayesdrop."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        yield info.name, module
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != info.name:
                continue
            yield f"{info.name}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    yield f"{info.name}.{name}.{attr}", getattr(member, "__func__", member)


def test_no_docstring_contains_a_control_character():
    bad = []
    count = 0
    for where, obj in _documented():
        doc = getattr(obj, "__doc__", None)
        if not isinstance(doc, str) or (inspect.ismodule(obj) is False and doc == type(obj).__doc__):
            continue
        count += 1
        chars = sorted({repr(c) for c in doc if ord(c) < 32 and c != "\n"})
        if chars:
            bad.append(f"{where}: {', '.join(chars)}")
    assert count > 100  # the walk found the package's docstrings
    assert not bad, bad
