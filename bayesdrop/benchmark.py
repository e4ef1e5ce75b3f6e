"""The UCI regression benchmark (protocol of Gal & Ghahramani 2016).

For every dataset and split: inputs and targets are standardised on the
training split; the network has one hidden layer of 50 ReLU units (100 for
protein); test RMSE and test log-likelihood of the MC predictive (T = 10,000
samples by default, as Gal's code) are averaged over splits with standard
errors. Methods:

- ``mc``: MC dropout (Bernoulli, on the input and the hidden layer) with
  Gal's grid: p in ``dropout_rates.txt`` x tau in ``tau_values.txt``, each
  trained on the first 80% of the training split and scored by validation
  log-likelihood on the last 20%; the best pair is retrained on the whole
  training split. Loss: mean squared error plus Gal's weight decay
  ``l^2 (1 - p) / (2 N tau)`` with l = 0.01 (applied to all parameters by
  Adam's coupled weight decay, twice the Keras coefficient since Keras
  penalises ``reg * sum W^2``); the predictive noise is 1/tau.
- ``gaussian``: multiplicative Gaussian noise N(1, p/(1-p)) in place of the
  Bernoulli masks (Srivastava et al. 2014, sec. 10), at the (p, tau) that the
  MC grid chose on the same split, trained on the whole training split.
- ``variational``: sparse variational dropout (one learned alpha per weight,
  initialised at p = 0.05) with a learned heteroscedastic noise (a second
  output of log-variances), trained on the whole training split by the ELBO,
  no grid and no validation split, with Adam at lr 0.01 and the KL weight
  warmed up linearly over the first half of the epochs.
- ``concrete``: concrete dropout (a learned Bernoulli rate before every
  linear layer, initialised at 0.1, weight-prior length-scale 1) with a
  learned heteroscedastic noise, trained like ``variational``.

The two learned-noise settings (:data:`LEARNED_DEFAULTS`) were chosen once,
by validation log-likelihood on the last 20% of the training part of splits
0-4 of bostonHousing, concrete, energy, wine-quality-red and yacht, and are
the same for every dataset (``examples/benchmarks/learned_noise.py``,
``benchmarks/learned_noise.md``).

MC and Gaussian dropout train with Adam at lr 0.001 (Gal's setting); every
method uses batch 128 and ``n_epochs.txt x epochs_multiplier`` epochs (Gal's
published grid-search numbers use 10x).

References
----------
- Hernández-Lobato & Adams 2015, arXiv:1502.05336 (the splits).
- Gal & Ghahramani 2016, arXiv:1506.02142, sec. 5.3 and the
  DropoutUncertaintyExps repository (protocol and grid).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ._distributed import seeded
from ._progress import progress_bar
from .datasets import load_uci
from .files import atomic_write
from .likelihoods import Gaussian
from .metrics import mixture_nll, rmse
from .mlp import METHODS, Method, build_mlp, standardization
from .montecarlo import sample
from .nn import ConcreteDropout, VariationalConv, VariationalLinear, sparsity
from .nn.variational import AlphaMode
from .training import fit

__all__ = [
    "GAL_2016",
    "GAL_REPO_10X",
    "LEARNED_DEFAULTS",
    "METHODS",
    "LearnedNoise",
    "format_results",
    "noise_summary",
    "run_split",
    "run_uci",
    "score_learned",
    "standardise",
    "train_learned",
    "validation_part",
]

#: Gal & Ghahramani's published grid-search results (10x epochs, 1 hidden
#: layer): RMSE and test log-likelihood with standard errors where quoted.
GAL_2016: dict[str, tuple[float, float | None, float, float | None]] = {
    "bostonHousing": (2.90, 0.18, -2.40, 0.04),
    "concrete": (4.82, None, -2.93, None),
    "energy": (0.54, None, -1.21, None),
    "kin8nm": (0.08, None, 1.14, None),
    "wine-quality-red": (0.62, None, -0.93, None),
    "yacht": (0.67, None, -1.25, None),
}

#: The same protocol (10x epochs, 1 hidden layer) as logged in Gal's
#: DropoutUncertaintyExps repository (UCI_Datasets/<name>/results/): MC RMSE
#: and test log-likelihood, mean and standard error over the 20 splits
#: (None where the repository keeps no log).
GAL_REPO_10X: dict[str, tuple[float | None, float | None, float | None, float | None]] = {
    "bostonHousing": (3.18, 0.21, -2.68, 0.13),
    "concrete": (5.64, 0.10, -3.13, 0.02),
    "energy": (1.09, 0.05, -1.72, 0.02),
    "yacht": (None, None, -1.38, 0.01),
}

_LENGTHSCALE = 1e-2


def standardise(x: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x`` standardised on ``ref``'s column means and standard deviations, and those statistics.

    Parameters
    ----------
    x : ndarray
        The array to standardise.
    ref : ndarray
        The array whose statistics are used (the training split).

    Returns
    -------
    standardised, mean, std : ndarray
        Constant columns get a std of 1.
    """
    mean, std = standardization(ref)
    return (x - mean) / std, mean, std


@dataclass(frozen=True)
class LearnedNoise:
    """How the benchmark trains a learned-noise method (one setting for every dataset).

    Attributes
    ----------
    method : {"variational", "concrete"}
    alpha : {"weight", "input", "layer"}
        The variational layers' alpha.
    init_p : float
        Initial dropout rate (log alpha = log(p / (1 - p)) for "variational").
    lr : float
        Adam's learning rate.
    warmup : float
        Fraction of the epochs over which the KL weight rises linearly to 1.
    kl_scale : float
        Multiplier of the KL (1 is the ELBO).
    heteroscedastic : bool
        Learn a per-input noise (a second output) instead of one noise.
    width : int or None
        Hidden units; None takes the dataset's (50, or 100 for protein).
    lengthscale : float
        Weight-prior length-scale of the concrete layers.
    epochs_factor : float
        Multiplier of the protocol's epochs.
    init_noise_std : float
        Initial observation noise (standardised targets).
    min_noise_std : float
        Floor of a heteroscedastic noise std (standardised targets; 0: none).
    lr_decay : bool
        Decay the learning rate linearly to zero over the epochs (constant otherwise).
    """

    method: Literal["variational", "concrete"] = "variational"
    alpha: AlphaMode = "weight"
    init_p: float = 0.05
    lr: float = 1e-2
    warmup: float = 0.5
    kl_scale: float = 1.0
    heteroscedastic: bool = False
    width: int | None = None
    lengthscale: float = 1e-2
    epochs_factor: float = 1.0
    init_noise_std: float = 1.0
    lr_decay: bool = False
    min_noise_std: float = 0.0


#: The learned-noise settings ``run_split`` uses for "variational" and "concrete".
LEARNED_DEFAULTS: dict[str, LearnedNoise] = {
    "variational": LearnedNoise("variational", heteroscedastic=True),
    "concrete": LearnedNoise("concrete", init_p=0.1, lengthscale=1.0, heteroscedastic=True),
}


def _train(
    method: Method, x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, p: float, tau: float, seed: int
) -> torch.nn.Module:
    """A fixed-rate method (MC or Gaussian dropout) with Gal's loss at (p, tau)."""
    with seeded(seed):
        net = build_mlp(x.shape[1], (hidden,), 1, method, p)
    fit(
        net,
        (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)),
        likelihood=Gaussian(noise_std=math.sqrt(0.5)),  # NLL = squared error + const
        epochs=epochs,
        lr=1e-3,
        batch_size=128,
        weight_decay=2 * _LENGTHSCALE**2 * (1 - p) / (2 * len(x) * tau),
        seed=seed,
        progress=False,
    )
    return net


def train_learned(
    settings: LearnedNoise, x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, seed: int
) -> tuple[torch.nn.Module, Gaussian]:
    """Train a learned-noise network (and its noise) on standardised ``x``, ``y`` by the ELBO.

    Parameters
    ----------
    settings : LearnedNoise
        The method and its hyperparameters.
    x, y : ndarray
        Standardised training inputs and targets.
    hidden : int
        Units of the hidden layer.
    epochs : int
        Training epochs.
    seed : int
        Seeds the initialisation and the batches.

    Returns
    -------
    net : torch.nn.Module
        The trained network.
    likelihood : Gaussian
        Its trained likelihood.
    """
    epochs = max(1, round(epochs * settings.epochs_factor))
    lik = Gaussian(
        heteroscedastic=settings.heteroscedastic,
        init_noise_std=settings.init_noise_std,
        min_noise_std=settings.min_noise_std,
    )
    with seeded(seed):
        net = build_mlp(
            x.shape[1],
            (settings.width or hidden,),
            lik.num_outputs,
            settings.method,
            settings.init_p,
            alpha=settings.alpha,
            lengthscale=settings.lengthscale,
        )
    fit(
        net,
        (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)),
        likelihood=lik,
        epochs=epochs,
        lr=settings.lr,
        scheduler=(lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 - e / epochs))
        if settings.lr_decay
        else None,
        batch_size=128,
        kl_scale=settings.kl_scale,
        kl_warmup_epochs=round(settings.warmup * epochs),
        seed=seed,
        progress=False,
    )
    return net, lik


def _predict(net: torch.nn.Module, x: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    out = sample(net, torch.tensor(x, dtype=torch.float32), num_samples, seed=seed)
    return out.double().numpy()  # (T, N, 1) standardised means, or (T, N, 2) means and log-variances


def score_learned(
    net: torch.nn.Module,
    lik: Gaussian,
    x: np.ndarray,
    y: np.ndarray,
    y_mean: float,
    y_std: float,
    num_samples: int,
    seed: int,
) -> dict[str, float]:
    """RMSE and log-likelihood (original units) of a learned-noise network on standardised ``x``.

    Parameters
    ----------
    net : torch.nn.Module
        The trained network.
    lik : Gaussian
        Its likelihood (homoscedastic or heteroscedastic).
    x : ndarray
        Standardised test inputs.
    y : ndarray
        Test targets in their original units.
    y_mean, y_std : float
        The training targets' standardisation.
    num_samples : int
        T of the MC mixture.
    seed : int
        Seeds the draws.

    Returns
    -------
    dict of str to float
        ``"rmse"``, ``"ll"`` (mean per-example log-likelihood of the mixture) and
    ``"noise_std"`` (the learned noise, root mean square over examples).
    """
    out = _predict(net, x, num_samples, seed)
    means = out[..., 0] * y_std + y_mean
    if lik.heteroscedastic:
        t, n = out.shape[:2]
        log_var = lik.split(torch.from_numpy(out.reshape(t * n, -1)))[1].numpy().reshape(t, n)  # the floor
        noise: Any = np.exp(0.5 * log_var) * y_std
        r = {"noise_std": float(np.sqrt(np.mean(noise**2)))}
    else:
        assert lik.noise_std is not None
        noise = float(lik.noise_std[0]) * y_std
        r = {"noise_std": noise}
    r["rmse"], r["ll"] = _score(means, y, noise)
    return r


def noise_summary(net: torch.nn.Module) -> dict[str, Any]:
    """What the noise learned: the fraction of pruned variational weights and the concrete layers' rates.

    Parameters
    ----------
    net : torch.nn.Module
        A trained network.

    Returns
    -------
    dict
        ``"sparsity"`` and ``"p"`` (one rate per concrete layer).
    """
    has_variational = any(isinstance(m, (VariationalLinear, VariationalConv)) for m in net.modules())
    return {
        "sparsity": sparsity(net) if has_variational else 0.0,
        "p": [round(float(m.p.detach()), 4) for m in net.modules() if isinstance(m, ConcreteDropout)],
    }


def validation_part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first 80% of a training split and the last 20% (Gal's validation split).

    Parameters
    ----------
    x, y : ndarray
        A training split.

    Returns
    -------
    x_train, y_train, x_val, y_val : ndarray
        The two parts, in order.
    """
    cut = round(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _score(means: np.ndarray, y: np.ndarray, noise_std: Any) -> tuple[float, float]:
    """RMSE of the MC mean and the MC mixture log-likelihood (original units)."""
    return rmse(means.mean(0), y), -mixture_nll(means, y, noise_std)


def run_split(
    data_dir: str,
    dataset: str,
    split: int,
    methods: Iterable[str] = METHODS,
    *,
    epochs_multiplier: int = 10,
    num_samples: int = 10_000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Train and test the methods on one split; one result dict per method.

    Parameters
    ----------
    data_dir : str
        The folder of the UCI sets (``<dataset>/data/...`` as in Gal's repository).
    dataset : str
        One of :data:`DATASETS`.
    split : int
        The train/test split, 0-19.
    methods : iterable of str
        Any of ``"variational"``, ``"mc"``, ``"gaussian"``, ``"concrete"``.
    epochs_multiplier : int
        Gal's epochs times this (the protocol's 10x by default).
    num_samples : int
        T of the test predictive.
    seed : int
        Seeds the initialisations and the MC draws.

    Returns
    -------
    list of dict
        Test RMSE and log-likelihood, the chosen hyperparameters and timings.
    """
    ds = load_uci(dataset, data_dir)
    train, test = ds.splits[split]
    epochs = ds.n_epochs * epochs_multiplier
    x_tr, y_tr, x_te, y_te = ds.X[train], ds.y[train], ds.X[test], ds.y[test]
    xs = standardise(x_tr, x_tr)[0]
    xt = standardise(x_te, x_tr)[0]
    ys, ym, ysd = standardise(y_tr[:, None], y_tr[:, None])
    results = []

    def finish(method: str, means: np.ndarray, noise: float, start: float, **extra: Any) -> None:
        r = {"dataset": dataset, "split": split, "method": method, "epochs": epochs, **extra}
        r["rmse"], r["ll"] = _score(means, y_te, noise)
        r["seconds"] = time.perf_counter() - start
        results.append(r)

    methods = list(methods)
    for method in ("variational", "concrete"):
        if method in methods:
            start = time.perf_counter()
            settings = LEARNED_DEFAULTS[method]
            net, lik = train_learned(settings, xs, ys[:, 0], ds.n_hidden, epochs, seed)
            r = {"dataset": dataset, "split": split, "method": method, "epochs": epochs}
            r.update(score_learned(net, lik, xt, y_te, float(ym[0]), float(ysd[0]), num_samples, seed))
            r.update(noise_summary(net))
            r["seconds"] = time.perf_counter() - start
            results.append(r)
    if "mc" in methods or "gaussian" in methods:
        # Gal's grid: validation log-likelihood on the last 20% of the training split.
        start = time.perf_counter()
        xa, ya, xv, yv = validation_part(x_tr, y_tr)
        xas, xvs = standardise(xa, xa)[0], standardise(xv, xa)[0]
        yas, yam, yasd = standardise(ya[:, None], ya[:, None])
        best: tuple[float, float, float] = (-math.inf, 0.0, 0.0)
        for p in ds.dropout_rates:
            for tau in ds.tau_values:
                net = _train("mc", xas, yas[:, 0], ds.n_hidden, epochs, p, tau, seed)
                mv = _predict(net, xvs, min(num_samples, 1000), seed)[..., 0] * yasd[0] + yam[0]
                ll = _score(mv, yv, 1 / math.sqrt(tau))[1]
                if ll > best[0]:
                    best = (ll, p, tau)
        grid_seconds = time.perf_counter() - start
        _, p, tau = best
        fixed: tuple[Method, ...] = ("mc", "gaussian")
        for method in fixed:
            if method in methods:
                start = time.perf_counter() - grid_seconds
                net = _train(method, xs, ys[:, 0], ds.n_hidden, epochs, p, tau, seed)
                means = _predict(net, xt, num_samples, seed)[..., 0] * ysd[0] + ym[0]
                finish(method, means, 1 / math.sqrt(tau), start, p=p, tau=tau, validation_ll=best[0])
    return results


def _task(args: tuple[str, str, int, tuple[str, ...], int, int]) -> list[dict[str, Any]]:
    torch.set_num_threads(1)
    data_dir, dataset, split, methods, mult, t = args
    return run_split(data_dir, dataset, split, methods, epochs_multiplier=mult, num_samples=t)


def run_uci(
    data_dir: str,
    datasets: Iterable[str],
    splits: Iterable[int] | None,
    methods: Iterable[str],
    out: str | os.PathLike[str],
    *,
    epochs_multiplier: int = 10,
    num_samples: int = 10_000,
    jobs: int = 1,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Run the benchmark, checkpointing every finished (dataset, split).

    Results are appended to ``<out>.jsonl`` as they finish; a rerun skips what
    that file already holds, so an interrupted run continues where it stopped.
    The Markdown table of every result in that file is written atomically to
    ``out`` at the end.

    Parameters
    ----------
    data_dir : str
        The folder of the UCI sets.
    datasets : iterable of str
        Names from :data:`DATASETS`.
    splits : iterable of int, optional
        Which splits (default: all of each set).
    methods : iterable of str
        As in :func:`run_split`.
    out : str or path
        The Markdown table to write (its log is ``<out>.jsonl``).
    epochs_multiplier : int
        Gal's epochs times this.
    num_samples : int
        T of the test predictive.
    jobs : int
        Splits run in parallel processes.
    progress : bool, optional
        A progress bar over the splits; None shows it in a terminal only.

    Returns
    -------
    list of dict
        Every result in the log, old and new.
    """
    out = Path(out)
    log = out.with_name(out.name + ".jsonl")
    done: list[dict[str, Any]] = []
    if log.exists():
        done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    have = {(r["dataset"], r["split"], r["method"], r["epochs"]) for r in done}
    methods = tuple(methods)
    tasks = []
    for ds in datasets:
        d = load_uci(ds, data_dir)
        for s in range(len(d.splits)) if splits is None else splits:
            if not 0 <= s < len(d.splits):
                raise ValueError(f"split {s} out of range for {ds} (0..{len(d.splits) - 1})")
            todo = tuple(m for m in methods if (ds, s, m, d.n_epochs * epochs_multiplier) not in have)
            if todo:
                tasks.append((str(data_dir), ds, s, todo, epochs_multiplier, num_samples))
    bar = progress_bar(total=len(tasks), desc="uci splits", progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:

        def record(rs: list[dict[str, Any]]) -> None:
            for r in rs:
                fh.write(json.dumps(r) + "\n")
                done.append(r)
            fh.flush()
            os.fsync(fh.fileno())
            bar.set_postfix(
                last=" ".join(f"{r['dataset']}/{r['split']}/{r['method']}:{r['ll']:.2f}" for r in rs), refresh=False
            )
            bar.update(1)

        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for rs in pool.map(_task, tasks):
                    record(rs)
        else:
            for t in tasks:
                record(_task(t))
    bar.close()
    atomic_write(out, format_results(done))
    return done


def _mean_se(values: list[float]) -> str:
    a = np.asarray(values)
    se = a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else float("nan")
    return f"{a.mean():.2f} ± {se:.2f}"


def _ref(values: tuple[float | None, ...]) -> str:
    mean, se = values[0], values[1]
    if mean is None:
        return ""
    return f"{mean:.2f}" + ("" if se is None else f" ± {se:.2f}")


def format_results(results: list[dict[str, Any]]) -> str:
    """Markdown table: mean ± standard error over splits, next to Gal's numbers.

    "Gal 2016" are the published grid-search numbers; "Gal's code, 10x" the
    logs of the same protocol in Gal's repository (:data:`GAL_REPO_10X`).

    Parameters
    ----------
    results : list of dict
        One dict per (dataset, split, method), as :func:`run_split` returns.

    Returns
    -------
    str
        The table.
    """
    lines = [
        "| dataset | method | splits | epochs | test RMSE | test LL | Gal 2016 RMSE | Gal 2016 LL "
        "| Gal's code, 10x: RMSE | Gal's code, 10x: LL |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    for ds in datasets:
        for m in METHODS:
            rs = [r for r in results if r["dataset"] == ds and r["method"] == m]
            if not rs:
                continue
            gal = GAL_2016.get(ds, (None, None, None, None))
            repo = GAL_REPO_10X.get(ds, (None, None, None, None))
            epochs = "/".join(str(e) for e in sorted({r["epochs"] for r in rs}))
            lines.append(
                f"| {ds} | {m} | {len(rs)} | {epochs} | {_mean_se([r['rmse'] for r in rs])} | "
                f"{_mean_se([r['ll'] for r in rs])} | {_ref(gal[:2])} | {_ref(gal[2:])} | "
                f"{_ref(repo[:2])} | {_ref(repo[2:])} |"
            )
    return "\n".join(lines) + "\n"
