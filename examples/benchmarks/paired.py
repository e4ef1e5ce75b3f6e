"""Two classifiers' test runs side by side, paired by seed, from ``classification.py``'s logs.

Each side is ``LOG:METHOD``: a JSONL log that ``examples/benchmarks/classification.py``
wrote and the method whose rows to take (for example the default's rows in
one log and ``mc``'s in another). For every dataset both sides have, the seeds
both have are paired: the mean ± standard error of each side's NLL and
accuracy, of the per-seed differences (first minus second), and whether the
first meets the estimators' target against the second (NLL no higher,
accuracy no more than one paired standard error below). The MNIST widths sit
in separate logs, so one call compares one width; ``--label`` names it::

    python examples/benchmarks/paired.py benchmarks/classification_mnist_256_concrete.md.jsonl:concrete \\
        benchmarks/classification_mnist_256_auto.md.jsonl:mc --label 2x256

``--smoke`` compares two of the logs in ``benchmarks/`` (the default against ``mc``
on digits, both with pooled inputs).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
ORDER = ["digits", "breast_cancer", "wine", "mnist1000", "mnist5000", "mnist60000"]  # the table's rows first


def side(spec: str) -> tuple[Path, str]:
    """``LOG:METHOD`` as a path and a method name."""
    log, sep, method = spec.rpartition(":")
    if not sep or not log or not method:
        raise argparse.ArgumentTypeError(f"a side is LOG:METHOD, such as runs.md.jsonl:mc; got {spec!r}")
    path = Path(log)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no log at {path} (from {spec!r})")
    return path, method


def runs(log: Path, method: str) -> dict[str, dict[int, dict[str, Any]]]:
    """dataset -> seed -> the test run of ``method`` (validation runs left out).

    A log can hold runs with different ``--set`` parameters; two runs of one
    dataset and seed with different parameters are an error rather than one
    silently replacing the other.
    """
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for line in log.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r["method"] == method and not r.get("validation", False):
                seeds = out.setdefault(r["dataset"], {})
                seen = seeds.get(int(r["seed"]))
                if seen is not None and seen.get("params") != r.get("params"):
                    raise ValueError(
                        f"{log} has {method} runs of {r['dataset']} seed {r['seed']} with different parameters "
                        f"({seen.get('params')} and {r.get('params')}): give a log with one setting per method"
                    )
                seeds[int(r["seed"])] = r
    return out


def _diff(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error (nan for one value)."""
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return float(values.mean()), float(se)


def _ms(values: np.ndarray) -> str:
    mean, se = _diff(values)
    return f"{mean:.3f}" if math.isnan(se) else f"{mean:.3f} ± {se:.3f}"


def table(first: tuple[Path, str], second: tuple[Path, str], label: str) -> str:
    """Markdown: one row per dataset both sides ran, over the seeds both ran."""
    a, b = runs(*first), runs(*second)
    head = (
        f"| set | net | seeds | NLL, {first[1]} | NLL, {second[1]} | NLL difference | accuracy, {first[1]} | "
        f"accuracy, {second[1]} | accuracy difference | target met |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    both = [d for d in a if d in b]
    for dataset in sorted(both, key=lambda d: (ORDER.index(d) if d in ORDER else len(ORDER), both.index(d))):
        seeds = sorted(set(a[dataset]) & set(b[dataset]))
        if not seeds:
            continue
        get = {k: (np.array([a[dataset][s][k] for s in seeds]), np.array([b[dataset][s][k] for s in seeds]))
               for k in ("nll", "accuracy")}  # fmt: skip
        (dn, dn_se), (da, da_se) = _diff(np.subtract(*get["nll"])), _diff(np.subtract(*get["accuracy"]))
        met = dn <= 0 and (da >= 0 or da >= -da_se)
        lines.append(
            f"| {dataset} | {label} | {len(seeds)} | {_ms(get['nll'][0])} | {_ms(get['nll'][1])} | "
            f"{dn:+.3f} ± {dn_se:.3f} | {_ms(get['accuracy'][0])} | {_ms(get['accuracy'][1])} | "
            f"{da:+.3f} ± {da_se:.3f} | {'yes' if met else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first", nargs="?", type=side, help="LOG:METHOD, the one the target is for")
    ap.add_argument("second", nargs="?", type=side, help="LOG:METHOD, the reference")
    ap.add_argument("--label", default="", help="the network, for the table (e.g. 2x256)")
    ap.add_argument("--smoke", action="store_true", help="the default against mc on digits (section 6's row)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.first = (BENCHMARKS / "classification_concrete.md.jsonl", "concrete")
        args.second = (BENCHMARKS / "classification_auto.md.jsonl", "mc")  # digits, pooled inputs as the default
        args.label = "50"
    elif args.first is None or args.second is None:
        ap.error("give two sides, LOG:METHOD LOG:METHOD (or --smoke)")
    print(table(args.first, args.second, args.label))


if __name__ == "__main__":
    main()
