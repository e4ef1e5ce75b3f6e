"""How close is each dropout posterior to the real one? Every method against a NUTS reference.

Problems (inputs standardised on the training set, UCI targets too):

- ``gap``: 1-D regression with a gap between two clusters of inputs, the
  set-up of Foong et al. 2019 ("in-between" uncertainty): 50 points on each of
  [-1, -0.35] and [0.35, 1], y = sin(4x) + N(0, 0.1^2); tested on a grid over
  [-1, 1] (both clusters and the gap between them) with fresh noise.
- ``yacht``, ``bostonHousing``: split 0 of the standard UCI splits
  (Hernández-Lobato & Adams 2015), from ``--data-dir``.

Network: one hidden layer of 50 ReLU units (10 in ``--smoke``). Reference:
:func:`bayesdrop.pyro.reference_posterior` on that network with the prior
N(0, 1/fan_in) on weights, N(0, 1) on biases and a learned noise std with a
HalfNormal(1) prior, 2 chains x (500 warm-up + 500 draws) of NUTS.

Methods, each trained with :func:`bayesdrop.fit` and a learned homoscedastic
Gaussian noise that starts at std 0.1 (Adam, lr 0.01, batch 32): ``mc`` (Bernoulli dropout p=0.1 on
the hidden units), ``gaussian`` (N(1, p/(1-p)) there), ``dropconnect``
(DropConnect p=0.1 on the output layer's weights), ``fast dropout``
(``FastDropoutLinear``, p=0.1, predicted with its analytic mean and variance:
the Gaussian is represented by its quantiles at (i + 1/2)/S), and
``variational`` with weight, input and layer alpha (both layers
``VariationalLinear``, the KL of the log-uniform prior, warmed up over the
first half of the epochs). The fixed-rate methods carry the reference's prior
as weight decay, (1 - p) fan_in / N on a weight and (1 - p) / N on a bias:
the KL of Gal & Ghahramani's dropout family to N(0, 1/fan_in), per example;
the variational ones the KL instead.

Table: W2 (mean over test inputs of the Wasserstein-2 distance between the
method's and the reference's sampled means), std ratio (geometric mean over
inputs of the ratio of their standard deviations; 1 is the reference's
uncertainty, < 1 overconfident), test NLL (UCI: original units) and the times
to fit and to predict 1,000 samples (S). Results are saved per problem in
``--out`` (the NUTS samples as ``reference_<problem>.pt``), so an interrupted
run resumes where it stopped.

    python examples/benchmarks/posterior_quality.py --data-dir ../shared/data/uci
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import bayesdrop
from bayesdrop import nn as bnn
from bayesdrop.datasets import load_uci
from bayesdrop.pyro import compare, reference_posterior

P = 0.1
LR = 0.01


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(binary_file)`` to a temporary name, then rename: an interrupted run loses nothing."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


@dataclass
class Problem:
    name: str
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_std: float  # test NLL in original units: + log(y_std)


def gap_problem(n_per_side: int, seed: int = 0) -> Problem:
    gen = torch.Generator().manual_seed(seed)
    left = -1 + 0.65 * torch.rand(n_per_side, generator=gen)
    right = 0.35 + 0.65 * torch.rand(n_per_side, generator=gen)
    x = torch.cat([left, right])[:, None]
    xt = torch.linspace(-1, 1, 101)[:, None]

    def f(v: torch.Tensor) -> torch.Tensor:
        return torch.sin(4 * v[:, 0])

    y = f(x) + 0.1 * torch.randn(len(x), generator=gen)
    yt = f(xt) + 0.1 * torch.randn(len(xt), generator=gen)
    return Problem("gap", x, y, xt, yt, 1.0)


def uci_problem(name: str, data_dir: str) -> Problem:
    ds = load_uci(name, data_dir)
    train, test = ds.splits[0]
    xm, xs = ds.X[train].mean(0), ds.X[train].std(0)
    xs = np.where(xs > 0, xs, 1.0)
    ym, ys = ds.y[train].mean(), ds.y[train].std()

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float32)

    return Problem(
        name,
        t((ds.X[train] - xm) / xs),
        t((ds.y[train] - ym) / ys),
        t((ds.X[test] - xm) / xs),
        t((ds.y[test] - ym) / ys),
        float(ys),
    )


def net_for(method: str, d: int, hidden: int) -> nn.Module:
    if method.startswith("variational"):
        alpha = method.split()[-1]
        return nn.Sequential(
            bnn.VariationalLinear(d, hidden, alpha=alpha), nn.ReLU(), bnn.VariationalLinear(hidden, 1, alpha=alpha)
        )
    last: dict[str, Callable[[], nn.Module]] = {
        "mc": lambda: nn.Sequential(bnn.Dropout(P), nn.Linear(hidden, 1)),
        "gaussian": lambda: nn.Sequential(bnn.GaussianDropout(P), nn.Linear(hidden, 1)),
        "dropconnect": lambda: bnn.DropConnectLinear(hidden, 1, P),
        "fast dropout": lambda: bnn.FastDropoutLinear(hidden, 1, P),
    }
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), last[method]())


METHODS = [
    "mc",
    "gaussian",
    "dropconnect",
    "fast dropout",
    "variational weight",
    "variational input",
    "variational layer",
]


def prior_decay(n: int) -> Callable[[list[dict[str, Any]]], torch.optim.Optimizer]:
    """Adam whose weight decay is Gal & Ghahramani's KL term for the reference's prior N(0, 1/fan_in) (biases N(0, 1))."""

    def make(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        split = []
        for g in groups:
            if g.get("weight_decay") == 0:
                split.append(g)
                continue
            for p in g["params"]:
                fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else 1
                split.append({"params": [p], "weight_decay": (1 - P) * fan_in / n})
        return torch.optim.Adam(split, lr=LR)

    return make


def train(method: str, prob: Problem, hidden: int, epochs: int, seed: int) -> tuple[nn.Module, bayesdrop.Gaussian]:
    torch.manual_seed(seed)
    net = net_for(method, prob.x.shape[1], hidden)
    lik = bayesdrop.Gaussian(init_noise_std=0.1)  # from 1.0 the fits of 100 points can settle on a flat line
    variational = method.startswith("variational")
    bayesdrop.fit(
        net,
        (prob.x, prob.y),
        likelihood=lik,
        epochs=epochs,
        batch_size=32,
        lr=LR,
        optimizer=None if variational else prior_decay(len(prob.x)),
        kl_warmup_epochs=epochs // 2 if variational else 0,
        seed=seed,
        progress=False,
    )
    return net, lik


def predict(method: str, net: nn.Module, lik: bayesdrop.Gaussian, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    """(S, N, 2) means and log-variances, the layout of ReferencePosterior.predict."""
    net.eval()
    if method == "fast dropout":
        with torch.no_grad():
            mean, var = bayesdrop.moment_propagation(net, x)
        u = torch.tensor((np.arange(num_samples) + 0.5) / num_samples, dtype=x.dtype)
        q = torch.special.ndtri(u)[:, None]
        means = mean[None, :, 0] + q * var[None, :, 0].sqrt()
        assert lik.log_var is not None
        return torch.stack([means, lik.log_var.detach().expand_as(means)], -1)
    return bayesdrop.sample(nn.Sequential(net, lik), x, num_samples, seed=0)


def run_problem(prob: Problem, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    hidden = 10 if args.smoke else 50
    ref_path = out / f"reference_{prob.name}.pt"
    base = nn.Sequential(nn.Linear(prob.x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 1))
    if ref_path.exists():
        saved = torch.load(ref_path, weights_only=True)
        ref_pred, ref_info = saved["predict"], saved["info"]
    else:
        ref = reference_posterior(
            base,
            prob.x,
            prob.y,
            likelihood=bayesdrop.Gaussian(),
            num_samples=args.num_samples,
            warmup_steps=args.warmup,
            num_chains=args.chains,
            compile=not args.smoke,
            max_tree_depth=4 if args.smoke else args.max_tree_depth,
            seed=0,
            progress=not args.smoke,
        )
        ref_pred = ref.predict(prob.x_test)
        ref_info = {k: float(v) for k, v in ref.diagnostics().items()}
        atomic_write(ref_path, lambda f: torch.save({"predict": ref_pred, "info": ref_info}, f))
    log_y = math.log(prob.y_std)
    rows = [
        {
            "problem": prob.name,
            "method": "reference (NUTS)",
            "w2": 0.0,
            "std_ratio": 1.0,
            "nll": compare(ref_pred, ref_pred, prob.y_test, likelihood=bayesdrop.Gaussian())["nll"] + log_y,
            "fit_s": ref_info["seconds"],
            "predict_s": float("nan"),
            "r_hat": ref_info["r_hat"],
            "ess": ref_info["ess"],
        }
    ]
    preds = {}
    for method in METHODS:
        start = time.perf_counter()
        net, lik = train(method, prob, hidden, args.epochs if prob.name != "gap" else args.epochs * 4, seed=0)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        pred = predict(method, net, lik, prob.x_test, args.predict_samples)
        predict_s = time.perf_counter() - start
        scores = compare(pred, ref_pred, prob.y_test, likelihood=bayesdrop.Gaussian())
        preds[method] = pred
        rows.append(
            {
                "problem": prob.name,
                "method": method,
                "w2": scores["w2"] * prob.y_std,
                "std_ratio": scores["std_ratio"],
                "nll": scores["nll"] + log_y,
                "fit_s": fit_s,
                "predict_s": predict_s,
            }
        )
    figure(prob, preds, ref_pred, out)
    return rows


def figure(prob: Problem, preds: dict[str, torch.Tensor], ref_pred: torch.Tensor, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesdrop import plots

    if prob.name == "gap":
        fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharex=True, sharey=True)
        for ax, (name, pred) in zip(axes.flat, preds.items(), strict=False):
            plots.posterior_comparison({name: pred}, ref_pred, prob.x_test, x_train=prob.x, y_train=prob.y, ax=ax)
            ax.set_title(name)
            ax.set_ylim(-3, 3)
        axes.flat[-1].axis("off")
    else:
        fig, ax = plt.subplots(figsize=(6, 6))
        plots.posterior_comparison(preds, ref_pred, ax=ax)
        ax.set_title(f"{prob.name}: std of f(x) per test input")
    fig.suptitle(f"Dropout posteriors against NUTS: {prob.name}")
    fig.tight_layout()
    path = out / f"posterior_{prob.name}.png"
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
    plt.close(fig)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| problem | method | W2 | std ratio | test NLL | fit (s) | predict (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        extra = f" (R-hat {r['r_hat']:.3f}, ESS {r['ess']:.0f})" if "r_hat" in r else ""
        pred = "" if math.isnan(r["predict_s"]) else f"{r['predict_s']:.2f}"
        lines.append(
            f"| {r['problem']} | {r['method']}{extra} | {r['w2']:.3f} | {r['std_ratio']:.2f} | {r['nll']:.3f} "
            f"| {r['fit_s']:.1f} | {pred} |"
        )
    return "\n".join(lines)


DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "uci"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the gap problem only, tiny sizes (the test suite)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="the UCI folder (skipped when absent)")
    parser.add_argument("--out", default="posterior_quality", help="folder for the results, figures and samples")
    parser.add_argument("--epochs", type=int, default=500, help="training epochs on UCI (4x on the gap problem)")
    parser.add_argument("--num-samples", type=int, default=500, help="NUTS draws per chain")
    parser.add_argument("--warmup", type=int, default=500, help="NUTS warm-up per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--max-tree-depth", type=int, default=8, help="NUTS's cap: 2^depth - 1 leapfrog steps a draw")
    parser.add_argument("--predict-samples", type=int, default=1000)
    parser.add_argument("--problems", nargs="*", default=["gap", "yacht", "bostonHousing"])
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.num_samples, args.warmup, args.chains, args.predict_samples = 5, 30, 30, 1, 50
        args.problems = ["gap"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "results.json"
    done: dict[str, list[dict[str, Any]]] = json.loads(log.read_text()) if log.exists() and not args.smoke else {}
    for name in args.problems:
        if name in done:
            print(f"{name}: done in an earlier run ({log})")
            continue
        if name == "gap":
            prob = gap_problem(10 if args.smoke else 50)
        elif os.path.isdir(args.data_dir):
            prob = uci_problem(name, args.data_dir)
        else:
            print(f"{name}: skipped, no UCI data at {args.data_dir}")
            continue
        start = time.perf_counter()
        done[name] = run_problem(prob, args, out)
        print(f"{name}: {time.perf_counter() - start:.0f} s")
        atomic_write(log, lambda f: f.write(json.dumps(done, indent=1).encode()))
    rows = [r for name in args.problems for r in done.get(name, [])]
    text = table(rows)
    atomic_write(out / "table.md", lambda f: f.write(text.encode() + b"\n"))
    print(text)


if __name__ == "__main__":
    main()
