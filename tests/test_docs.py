"""The documentation builds with warnings as errors, documents every public name and runs its tutorials.

One build (about two minutes on 2 cores, tutorials included) serves every check of this file, so they share
one test function: a failure lists every problem found, each naming the page, object or tutorial.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_docstrings import public_modules

for _requirement in ("sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "sphinx_design", "pydata_sphinx_theme"):
    pytest.importorskip(_requirement, reason="the docs extras are not installed: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: What the tutorials print when what they demonstrate holds (the gallery keeps each script's output).
TUTORIAL_FACTS = {
    "plot_lightning": ["predict_step ran in eval mode: True", "...and between two eval-mode passes: 0.0000"],
    "plot_transformers": ["model still in eval mode: True"],
    "plot_cnn_batchnorm": [
        "BatchNorm running mean unchanged by sampling: True",
        "an image's samples do not depend on its batch: True",
    ],
    "plot_regression_uncertainty": ["learned noise std"],
    "plot_active_learning": ["bald  : test accuracy", "random: test accuracy"],
}


def public_names() -> dict[int, list[str]]:
    """Each public object (by identity) with every public path it is exported under."""
    paths: dict[int, list[str]] = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not inspect.ismodule(obj):
                paths.setdefault(id(obj), []).append(f"{module_name}.{name}")
    return paths


def _inventory(path: Path) -> set[str]:
    from sphinx.util.inventory import InventoryFile

    with open(path, "rb") as f:
        inventory = InventoryFile.load(f, "", lambda base, uri: uri)
    names = set()
    for domain, entries in inventory.items() if isinstance(inventory, dict) else inventory.data.items():
        if domain.startswith("py:"):
            names.update(entries)
    return names


def _gallery_output(rst: Path) -> str:
    """The captured stdout blocks of a sphinx-gallery page."""
    text = rst.read_text()
    return "\n".join(re.findall(r"\.\. code-block:: none\n\n(.*?)(?:\n\n\S|\Z)", text, re.S))


def test_the_docs_build_without_warnings_name_every_public_object_and_run_the_tutorials(tmp_path):
    out = tmp_path / "html"
    shutil.rmtree(DOCS / "auto_tutorials", ignore_errors=True)  # sphinx-gallery skips scripts it ran before
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees")]
    build = subprocess.run([*cmd, str(DOCS), str(out)], capture_output=True, text=True, env=env, timeout=1200)
    assert build.returncode == 0, f"the docs build failed (warnings are errors):\n{build.stderr[-6000:]}"

    problems = []
    documented = _inventory(out / "objects.inv")
    for module_name in public_modules():
        if module_name not in documented:
            problems.append(f"module {module_name} has no API page")
    for paths in public_names().values():
        if not documented.intersection(paths):
            problems.append(f"{paths[0]} is public (in __all__) but has no API entry")
    for tutorial, facts in TUTORIAL_FACTS.items():
        rst = DOCS / "auto_tutorials" / f"{tutorial}.rst"
        if not rst.exists():
            problems.append(f"tutorial {tutorial} was not built")
            continue
        printed = _gallery_output(rst)
        problems += [f"tutorial {tutorial} did not print {fact!r}" for fact in facts if fact not in printed]
    tutorials = sorted(p.stem for p in (DOCS / "tutorials").glob("plot_*.py"))
    assert sorted(TUTORIAL_FACTS) == tutorials, "give every tutorial its facts in TUTORIAL_FACTS"
    assert not problems, "\n".join(problems)
    for page in ("index", "getting_started", "user_guide/active_learning", "benchmarks", "auto_tutorials/index"):
        assert (out / f"{page}.html").exists(), page


def test_the_docs_config_makes_bayesdrop_references_strict():
    # nitpicky: a reference to a bayesdrop name that does not exist is a warning, and -W makes it an error;
    # references into other packages (no inventory offline) are exempt, ours are not.
    source = (DOCS / "conf.py").read_text()
    assert "nitpicky = True" in source
    pattern = re.search(r"nitpick_ignore_regex = \[\(r\"py:\.\*\", r\"(.*?)\"\)\]", source).group(1)
    assert not re.fullmatch(pattern, "bayesdrop.sample")
    assert not re.fullmatch(pattern, "bayesdrop.no_such_name")
    assert re.fullmatch(pattern, "torch.Tensor")
    assert "sphinx.ext.intersphinx" not in source  # no network at build time
