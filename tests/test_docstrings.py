"""Every docstring of the package is readable text: no control characters.

A backslash in a docstring that is not a raw string turns ``\\frac`` into a
form feed and ``\\varphi`` into a vertical tab; this walks every module,
class, function and method of the package.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import torch

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


def public_modules() -> list[str]:
    """Every importable module of the package whose path has no private part (the API reference documents each)."""
    names = ["bayesdrop"]
    for info in pkgutil.walk_packages(bayesdrop.__path__, "bayesdrop."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


PUBLIC_MODULES = public_modules()


def _section(doc: str, title: str) -> list[str] | None:
    """Names documented in a numpydoc section (``a, b : type`` lines at the section's indent), None if absent."""
    lines = [*inspect.cleandoc(doc).split("\n"), ""]
    heads = [i for i in range(len(lines) - 1) if lines[i].strip() and set(lines[i + 1].strip()) == {"-"}]
    for i in heads:
        if lines[i].strip() != title:
            continue
        end = min([h for h in heads if h > i] + [len(lines)])
        names = []
        for entry in lines[i + 2 : end]:
            if entry and not entry.startswith(" "):
                names += [n.strip().lstrip("*") for n in entry.split(" : ")[0].split(",")]
        return names
    return None


def _public_callables():
    """Every public function and class, and the public methods a class defines itself (not torch's)."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    fn = getattr(member, "__func__", member)
                    if attr.startswith("_") or not inspect.isfunction(fn) or id(fn) in seen:
                        continue
                    if attr in ("forward", "extra_repr") or (fn.__doc__ or "").startswith("Inherited"):
                        continue  # nn.Module's call protocol: documented by the class itself
                    seen.add(id(fn))
                    yield f"{module_name}.{name}.{attr}", fn


def test_public_docstrings_document_their_parameters_and_returns():
    # scikit-learn's test_docstring_parameters in small: the Parameters section (Attributes for a dataclass)
    # names exactly the signature's parameters, and a function that returns something has a Returns section.
    problems = []
    checked = 0
    for where, obj in _public_callables():
        doc = inspect.getdoc(obj) or ""
        is_dataclass = inspect.isclass(obj) and (hasattr(obj, "__dataclass_fields__") or hasattr(obj, "_fields"))
        fn = obj.__init__ if inspect.isclass(obj) else obj
        if fn is torch.nn.Module.__init__:  # a module without its own constructor takes no parameters
            fn = lambda: None
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.name not in ("self", "cls") and not p.name.startswith("_") and p.kind not in (p.VAR_POSITIONAL,)
        ]
        if inspect.isclass(obj) and hasattr(obj, "_fields"):  # a NamedTuple: its fields are its parameters
            params = list(obj._fields)
        documented = _section(doc, "Attributes" if is_dataclass else "Parameters")
        if params and documented is None:
            problems.append(f"{where}: no {'Attributes' if is_dataclass else 'Parameters'} section")
        elif params and set(documented) != set(params):
            problems.append(f"{where}: documents {sorted(documented)}, signature has {sorted(params)}")
        returns = inspect.signature(fn).return_annotation
        if not inspect.isclass(obj) and returns not in (None, "None") and _section(doc, "Returns") is None:
            problems.append(f"{where}: no Returns section")
        checked += 1
    assert checked > 80
    assert not problems, "\n".join(problems)
