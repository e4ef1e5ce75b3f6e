"""The house rules of the package layout (CONTRIBUTING.md), checked on the source.

- No function over 60 lines of code (docstrings, comments and blank lines not
  counted) and none with more than 12 parameters, unless the line above its
  ``def`` (or its decorators) is a ``# size: <reason>`` comment.
- No private name imported across module boundaries; examples import no
  private module.
- No single-letter module aliases (torch's own ``F`` for
  ``torch.nn.functional`` excepted).
- No attribute of a package shadows one of its modules.
"""

from __future__ import annotations

import ast
import importlib
import io
import pkgutil
import tokenize
from pathlib import Path

import pytest

import bayesdrop

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesdrop"
MAX_CODE_LINES = 60
MAX_PARAMETERS = 12


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _code_lines(source: str, node: ast.AST) -> int:
    """Lines of ``node`` that hold code: not blank, not a comment, not the docstring."""
    doc: set[int] = set()
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        doc = set(range(body[0].lineno, body[0].end_lineno + 1))
    code: set[int] = set()
    snippet = "\n".join(source.splitlines()[node.lineno - 1 : node.end_lineno])
    for tok in tokenize.generate_tokens(io.StringIO(snippet).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            continue
        if tok.type == tokenize.ENDMARKER:
            continue
        for line in range(tok.start[0], tok.end[0] + 1):
            code.add(line + node.lineno - 1)
    return len(code - doc)


def _excused(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return first >= 2 and lines[first - 2].strip().startswith("# size:")


def _functions(path: Path) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    tree = ast.parse(path.read_text())
    return [(f"{path.relative_to(ROOT)}:{n.lineno} {n.name}", n) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]  # fmt: skip


def test_no_function_is_too_long_or_takes_too_many_parameters():
    problems = []
    for path in _sources(PACKAGE):
        source = path.read_text()
        lines = source.splitlines()
        for where, fn in _functions(path):
            if _excused(lines, fn):
                continue
            n_code = _code_lines(source, fn)
            args = fn.args
            params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg not in ("self", "cls")]
            if n_code > MAX_CODE_LINES:
                problems.append(f"{where}: {n_code} lines of code")
            if len(params) > MAX_PARAMETERS:
                problems.append(f"{where}: {len(params)} parameters")
    assert not problems, "functions over the limits without a '# size:' reason:\n" + "\n".join(problems)


def test_the_size_check_counts_code_not_docstrings_or_comments():
    source = (
        'def f(a):\n    """Doc.\n\n    More doc.\n    """\n    # a comment\n\n    x = (a +\n         1)\n    return x\n'
    )
    fn = ast.parse(source).body[0]
    assert _code_lines(source, fn) == 4  # def, the two lines of x = ..., return


def test_no_private_name_crosses_a_module_boundary():
    problems = []
    for path in _sources(PACKAGE) + _sources(ROOT / "examples"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:  # "from . import _calls": a module
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {private} from {node.module}")
                if (
                    "examples" in path.parts
                    and node.module
                    and any(part.startswith("_") for part in node.module.split(".")[1:])
                ):
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports the private {node.module}")
    assert not problems, "\n".join(problems)


def test_no_single_letter_module_alias():
    problems = []
    for path in _sources(PACKAGE) + _sources(ROOT / "examples"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}" if isinstance(node, ast.ImportFrom) else alias.name
                    if alias.asname and len(alias.asname) == 1 and full != "torch.nn.functional":
                        problems.append(f"{path.relative_to(ROOT)}:{node.lineno} import {full} as {alias.asname}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", ["bayesdrop", "bayesdrop.nn", "bayesdrop.metrics"])
def test_no_attribute_shadows_a_module(package):
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name == "__main__":
            continue  # running it is running the command
        module = importlib.import_module(f"{package}.{info.name}")
        attr = getattr(pkg, info.name)
        assert attr is module, f"{package}.{info.name} is a {type(attr).__name__}, not its module"


def test_the_old_sampling_module_path_still_imports_with_a_warning():
    import sys

    with pytest.warns(DeprecationWarning, match="moved to bayesdrop.montecarlo"):
        sample = sys.modules["bayesdrop.sampling"].sample
    assert sample is bayesdrop.sample
