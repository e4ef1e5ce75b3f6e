"""Sphinx configuration of bayesdrop's documentation.

Build (no network needed): ``pip install -e ".[docs]"``, then
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

Stack: Sphinx + pydata-sphinx-theme + numpydoc + sphinx-gallery, the stack of
scikit-learn and torch-uncertainty, whose users are ours; MyST lets the user
guide keep the Markdown it was written in (and the README's test harness run
its code blocks).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import matplotlib

import bayesdrop

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "bayesdrop"
author = "the bayesdrop developers"
copyright = "2026, the bayesdrop developers"
release = bayesdrop.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx_design",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "tutorials/README.rst", "**/*.ipynb"]
templates_path = ["_templates"]

# API reference: one page per public name, from the numpydoc docstrings.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc sections carry the types; annotations would need torch's inventory
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc's validation on every documented object: a docstring (GL08) with a summary line (SS01). Parameters
# and Returns against the signatures are checked by tests/test_docstrings.py, which knows a dataclass
# documents its fields under Attributes and reads the return annotation.
numpydoc_validation_checks = {"GL08", "SS01"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.forward$", r"\.extra_repr$"}

# bayesdrop's own references must resolve; references into torch, numpy, scikit-learn and the standard
# library have no inventory offline (no intersphinx fetches), so they stay plain text.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"^(?!bayesdrop\b).*")]

myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # benchmark files start at their own heading levels

sphinx_gallery_conf = {
    "examples_dirs": ["tutorials"],
    "gallery_dirs": ["auto_tutorials"],
    "filename_pattern": r"/(plot_|tutorial_)",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "min_reported_time": 0,
}

html_theme = "pydata_sphinx_theme"
html_title = f"bayesdrop {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": []}
html_show_sourcelink = False


#: Titles of the result files that are bare tables.
RESULT_TITLES = {
    "uci_results": "UCI regression, every method",
    "uci_estimator": "UCI regression, the default DropoutRegressor",
    "classification": "Classification on the scikit-learn sets",
    "classification_0.2": "Classification at a dropout rate of 0.2",
    "classification_mnist_256": "Classification on MNIST subsets, 2x256 units",
    "classification_mnist_800": "Classification on MNIST subsets, 2x800 units",
    "classification_auto": "Classification on digits, pooled input scaling",
    "classification_mnist_256_auto": "MNIST subsets, 2x256 units, pooled input scaling",
    "classification_mnist_800_auto": "MNIST subsets, 2x800 units, pooled input scaling",
    "classification_concrete": "The default classifier on the scikit-learn sets (concrete from 0.1, floor 0.05)",
    "classification_mnist_256_concrete": "The default classifier on MNIST subsets, 2x256 units",
    "classification_mnist_800_concrete": "The default classifier on MNIST subsets, 2x800 units",
    "overconfidence": "Overconfidence over epochs",
    "active_scoring": "Pool scoring speed",
}


def copy_results(_app: object) -> None:
    """Copy ``benchmarks/`` (tables, figures) into ``docs/results`` so the Results pages render them."""
    target = DOCS / "results"
    if target.exists():
        shutil.rmtree(target)
    source = ROOT / "benchmarks"
    for path in sorted(source.rglob("*")):
        if path.suffix not in {".md", ".png"} or "_models" in path.parts or "_predictions" in path.parts:
            continue
        if path.suffix == ".md" and path.parent != source:  # the runs' own tables are in the pages already
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".png":
            shutil.copyfile(path, out)
            continue
        text = path.read_text()
        if not text.startswith("# "):  # a table a script wrote: give its page a title
            title = RESULT_TITLES.get(path.stem, path.stem)
            text = f"# {title}\n\nThe file `benchmarks/{path.name}`, as its script wrote it.\n\n{text}"
        text = re.sub(r"\]\(\.\./docs/images/", "](../images/", text)
        out.write_text(text)


#: The API reference, one page per public module, in this order; an object re-exported by several modules is
#: documented once, under the first module that lists it (``bayesdrop.sample``, not
#: ``bayesdrop.montecarlo.sample``). tests/test_docs.py checks that every public name is in the built inventory.
API_MODULES = [
    ("bayesdrop", "Top level: the names most scripts need"),
    ("bayesdrop.nn", "Layers"),
    ("bayesdrop.nn.functional", "Layer math"),
    ("bayesdrop.nn.dropout", "Unit noise (in bayesdrop.nn)"),
    ("bayesdrop.nn.variational", "Variational dropout (in bayesdrop.nn)"),
    ("bayesdrop.nn.concrete", "Concrete dropout (in bayesdrop.nn)"),
    ("bayesdrop.nn.weight", "DropConnect (in bayesdrop.nn)"),
    ("bayesdrop.nn.moments", "Fast dropout (in bayesdrop.nn)"),
    ("bayesdrop.nn.pooling", "Max-pooling dropout (in bayesdrop.nn)"),
    ("bayesdrop.nn.depth", "DropPath and stochastic depth (in bayesdrop.nn)"),
    ("bayesdrop.nn.placement", "Dropout and BatchNorm (in bayesdrop.nn)"),
    ("bayesdrop.likelihoods", "Likelihoods"),
    ("bayesdrop.montecarlo", "Monte Carlo sampling"),
    ("bayesdrop.training", "Training"),
    ("bayesdrop.evaluation", "Evaluation"),
    ("bayesdrop.metrics", "Metrics"),
    ("bayesdrop.metrics.classification", "Classification metrics (in bayesdrop.metrics)"),
    ("bayesdrop.metrics.regression", "Regression metrics (in bayesdrop.metrics)"),
    ("bayesdrop.metrics.uncertainty", "Uncertainty of a classifier (in bayesdrop.metrics)"),
    ("bayesdrop.metrics.gap", "The MC-vs-deterministic gap (in bayesdrop.metrics)"),
    ("bayesdrop.metrics.ood", "OOD detection (in bayesdrop.metrics)"),
    ("bayesdrop.metrics.selective", "Selective prediction (in bayesdrop.metrics)"),
    ("bayesdrop.metrics.posterior", "Distances between predictives (in bayesdrop.metrics)"),
    ("bayesdrop.calibrate", "Temperature scaling"),
    ("bayesdrop.conformal", "Conformal prediction"),
    ("bayesdrop.shifts", "Dataset shift"),
    ("bayesdrop.datasets", "Datasets"),
    ("bayesdrop.active", "Active learning"),
    ("bayesdrop.plots", "Plots"),
    ("bayesdrop.report", "Reports"),
    ("bayesdrop.diagnostics", "Diagnostics"),
    ("bayesdrop.sklearn", "scikit-learn estimators"),
    ("bayesdrop.mlp", "The estimators' network"),
    ("bayesdrop.model_file", "Model files"),
    ("bayesdrop.files", "Atomic files"),
    ("bayesdrop.pyro", "The Pyro bridge"),
    ("bayesdrop.benchmark", "The UCI benchmark"),
    ("bayesdrop.cli", "The command line"),
    ("bayesdrop.demo", "The demo"),
]


def write_api_pages(_app: object) -> None:
    """``docs/api/<module>.rst``: the module's docstring and an autosummary of the names it alone owns."""
    import importlib
    import inspect

    out = DOCS / "api"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    seen: set[int] = set()
    index = ["API reference", "=============", "", ".. toctree::", "   :maxdepth: 1", ""]
    for name, title in API_MODULES:
        module = importlib.import_module(name)
        owned = []
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.ismodule(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            owned.append(attr)
        heading = f"``{name}``: {title}"
        page = [heading, "=" * len(heading), "", f".. automodule:: {name}", "   :no-members:", ""]
        if owned:
            page += [f".. currentmodule:: {name}", "", ".. autosummary::", "   :toctree: generated", ""]
            page += [f"   {attr}" for attr in owned]
        (out / f"{name}.rst").write_text("\n".join(page) + "\n")
        index.append(f"   {name}")
    (out / "index.rst").write_text("\n".join(index) + "\n")


# Written when this file is read, before Sphinx looks for source files and autosummary for its stubs.
copy_results(None)
write_api_pages(None)
