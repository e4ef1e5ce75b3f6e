"""Uncertainty under dataset shift and out-of-distribution detection on MNIST: dropout against a deep ensemble.

The protocol of Ovadia et al. 2019 ("Can you trust your model's uncertainty?",
arXiv:1906.02530) on the shared MNIST files, with one architecture (a ReLU
MLP 784-200-200-10, Adam at lr 0.001, batch 128) and these methods:

- ``deterministic``: no dropout (ensemble member 0);
- ``temp_scaled``: the same network with a temperature fitted on the
  validation split (the last 5,000 training images; Guo et al. 2017);
- ``mc_dropout``: Bernoulli dropout p = 0.1 after each hidden layer, MC predictive;
- ``mc_dropout_all``: dropout p = 0.1 on the input too (dropout after every layer);
- ``ll_dropout``: dropout p = 0.1 before the last layer only;
- ``concrete``: concrete dropout before every layer (learned rates, initial 0.1);
- ``variational``: sparse variational dropout (learned alpha per weight, KL
  warmed up over half of the epochs);
- ``ensemble``: 5 deterministic networks from different seeds (Lakshminarayanan
  et al. 2017), the mean of their softmaxes; its training time is the sum.

Evaluation: the whole test set (10,000) unshifted; a fixed subset of 2,000
test images rotated by 15-180 degrees (steps of 15), translated by 2-26
pixels (steps of 2) and corrupted (six MNIST-C-style corruptions at
severities 1-5); out-of-distribution: 2,000 grayscale crops of scikit-learn's
photographs (far OOD), 2,000 uniform and 2,000 Gaussian noise images. Near
OOD: every method trained again on digits 0-4 and scored on the test digits
5-9 against 0-4. Fashion-MNIST and notMNIST, Ovadia's OOD sets, cannot be
downloaded here. MC methods use T samples (``--num-samples``, 50).

Every trained model is saved under ``--work-dir`` and every measured number
is a line of ``<out>.jsonl``: an interrupted run continues where it stopped
and rerunning only rewrites the tables and figures.

    python examples/benchmarks/shift_ood.py --data-dir ../shared/data/mnist --out benchmarks/shift_ood.md
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import bayesdrop
from bayesdrop import metrics
from bayesdrop.calibrate import fit_temperature
from bayesdrop.datasets import INTENSITIES, load_mnist, noise_images, photo_crops, shift
from bayesdrop.files import atomic_write
from bayesdrop.mlp import build_mlp

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
METHODS = (
    "deterministic", "temp_scaled", "mc_dropout", "mc_dropout_all", "ll_dropout", "concrete", "variational", "ensemble"
)  # fmt: skip
MC_METHODS = ("mc_dropout", "mc_dropout_all", "ll_dropout", "concrete", "variational")
SHIFT_METRICS = ("accuracy", "nll", "ece", "brier")
P = 0.1


# --------------------------------------------------------------------------- data


def mnist(data_dir: Path, split: str, digits: tuple[int, ...] | None, limit: int | None) -> tuple[Tensor, Tensor]:
    images, labels = load_mnist(data_dir, split)
    x, y = torch.from_numpy(images).float().div_(255.0), torch.from_numpy(labels)
    if digits is not None:
        keep = torch.isin(y, torch.tensor(digits))
        x, y = x[keep], y[keep]
    return (x[:limit], y[:limit]) if limit else (x, y)


# --------------------------------------------------------------------------- models


def build(method: str, classes: int) -> nn.Module:
    def hidden(p_in: float, p1: float, p2: float) -> nn.Sequential:
        return nn.Sequential(
            nn.Flatten(), nn.Dropout(p_in), nn.Linear(784, 200), nn.ReLU(), nn.Dropout(p1), nn.Linear(200, 200),
            nn.ReLU(), nn.Dropout(p2), nn.Linear(200, classes),
        )  # fmt: skip

    if method in ("deterministic", "ensemble"):
        return hidden(0.0, 0.0, 0.0)
    if method == "mc_dropout":
        return hidden(0.0, P, P)
    if method == "mc_dropout_all":
        return hidden(P, P, P)
    if method == "ll_dropout":
        return hidden(0.0, 0.0, P)
    return nn.Sequential(nn.Flatten(), build_mlp(784, (200, 200), classes, method, P))  # concrete, variational


def train(method: str, seed: int, data: tuple[Tensor, Tensor], args: argparse.Namespace, classes: int) -> nn.Module:
    torch.manual_seed(seed)
    net = build(method, classes)
    warmup = args.epochs // 2 if method == "variational" else 0
    bayesdrop.fit(net, data, likelihood=bayesdrop.Categorical(), epochs=args.epochs, lr=1e-3, batch_size=128,
                  kl_warmup_epochs=warmup, seed=seed, progress=args.progress)  # fmt: skip
    return net


class Store:
    """Trained models under ``work_dir`` (``<part>-<method>-<seed>.pt``) and results in a JSON-lines log."""

    def __init__(self, work_dir: Path, log: Path) -> None:
        self.work_dir, self.log = work_dir, log
        work_dir.mkdir(parents=True, exist_ok=True)
        self.rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def model(self, key: str, make: Callable[[], nn.Module], template: nn.Module) -> tuple[nn.Module, float]:
        path = self.work_dir / f"{key}.pt"
        if path.exists():
            state = torch.load(path, weights_only=True)
            template.load_state_dict(state["model"])
            return template.eval(), float(state["seconds"])
        start = time.perf_counter()
        net = make()
        seconds = time.perf_counter() - start
        atomic_write(path, lambda fh: torch.save({"model": net.state_dict(), "seconds": seconds}, fh))
        return net.eval(), seconds

    def done(self, **key: Any) -> dict[str, Any] | None:
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with self.log.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


# --------------------------------------------------------------------------- predictions


class Predictor:
    """A method's predictive on a batch: probability samples (S, N, K) and logits of its deterministic pass."""

    def __init__(self, method: str, nets: list[nn.Module], num_samples: int, temperature: float = 1.0) -> None:
        self.method, self.nets, self.num_samples, self.temperature = method, nets, num_samples, temperature

    @torch.no_grad()
    def __call__(self, x: Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
        if self.method in MC_METHODS:
            logits = bayesdrop.sample(self.nets[0], x, self.num_samples, seed=seed)
            det = self.nets[0].eval()(x)
        else:  # deterministic, temperature-scaled, ensemble: one pass per network
            logits = torch.stack([net.eval()(x) for net in self.nets]) / self.temperature
            det = logits.mean(0)  # an ensemble's "deterministic" logits: the members' mean
        return torch.softmax(logits.double(), -1).numpy(), det.double().numpy()


def measure(predict: Predictor, x: Tensor, y: Tensor | None, seed: int, chunk: int = 2000) -> dict[str, Any]:
    """Metrics of the predictive (with labels) and every OOD score per example."""
    probs, det = zip(*(predict(x[i : i + chunk], seed + i) for i in range(0, len(x), chunk)), strict=True)
    samples, logits = np.concatenate(probs, 1), np.concatenate(det, 0)
    mean = samples.mean(0)
    mean = mean / mean.sum(-1, keepdims=True)
    scores = {f"mc_{k}": v for k, v in metrics.mc_scores(samples).items()}
    scores.update({f"det_{k}": v for k, v in metrics.deterministic_scores(logits).items()})
    out: dict[str, Any] = {"scores": scores}
    if y is not None:
        labels = y.numpy()
        out.update(accuracy=metrics.accuracy(mean, labels), nll=metrics.nll(mean, labels),
                   ece=metrics.ece(mean, labels), brier=metrics.brier(mean, labels))  # fmt: skip
    return out


# --------------------------------------------------------------------------- the run


def methods_of(store: Store, part: str, train_set: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
               args: argparse.Namespace, classes: int) -> dict[str, tuple[Predictor, float]]:  # fmt: skip
    """Every method's predictor and training seconds (models trained once, then loaded)."""

    def get(method: str, seed: int) -> tuple[nn.Module, float]:
        kind = "deterministic" if method == "ensemble" else method
        key = f"{part}-{kind}-{seed}"
        return store.model(key, lambda: train(kind, seed, train_set, args, classes), build(kind, classes))

    members = [get("ensemble", seed) for seed in range(args.members)]
    det_net, det_seconds = members[0]
    start = time.perf_counter()
    with torch.no_grad():
        temperature = fit_temperature(det_net.eval()(val[0]), val[1])
    out = {
        "deterministic": (Predictor("deterministic", [det_net], 1), det_seconds),
        "temp_scaled": (Predictor("temp_scaled", [det_net], 1, temperature), det_seconds + time.perf_counter() - start),
        "ensemble": (Predictor("ensemble", [m for m, _ in members], 1), sum(s for _, s in members)),
    }
    for method in MC_METHODS:
        net, seconds = get(method, 0)
        out[method] = (Predictor(method, [net], args.num_samples), seconds)
    return {m: out[m] for m in METHODS if m in args.methods}


def shifted_sets(args: argparse.Namespace) -> list[tuple[str, float]]:
    kinds = [k for k in INTENSITIES if k in args.shifts]
    return [(k, float(i)) for k in kinds for i in (INTENSITIES[k][:1] if args.smoke else INTENSITIES[k])]


def run_part_all(store: Store, args: argparse.Namespace) -> None:
    """Digits 0-9: the test set, every shift and the far-OOD sets."""
    train_x, train_y = mnist(args.data_dir, "train", None, args.limit)
    n_val = max(len(train_x) // 12, 2)
    trainset, val = (train_x[:-n_val], train_y[:-n_val]), (train_x[-n_val:], train_y[-n_val:])
    test_x, test_y = mnist(args.data_dir, "test", None, args.test_limit)
    sub = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(0))[: args.shift_size]
    far = {
        "photos": photo_crops(args.ood_size, seed=0),
        "uniform_noise": noise_images(args.ood_size, "uniform", seed=1),
        "gaussian_noise": noise_images(args.ood_size, "gaussian", seed=2),
    }
    for method, (predict, seconds) in methods_of(store, "all", trainset, val, args, 10).items():
        if not store.done(part="all", method=method, set="test"):
            clean = measure(predict, test_x, test_y, seed=0)
            row = {k: clean[k] for k in SHIFT_METRICS}
            store.add({"part": "all", "method": method, "set": "test", "train_seconds": seconds, **row})
            for name, images in far.items():
                out = measure(predict, images, None, seed=1)
                store.add({"part": "all", "method": method, "set": name, "ood": _ood(clean["scores"], out["scores"]),
                           "scores_in": _sample(clean["scores"]), "scores_out": _sample(out["scores"])})  # fmt: skip
        for kind, intensity in shifted_sets(args):
            if store.done(part="all", method=method, set=kind, intensity=intensity):
                continue
            x = shift(test_x[sub], kind, intensity, seed=int(intensity))
            res = measure(predict, x, test_y[sub], seed=2)
            store.add({"part": "all", "method": method, "set": kind, "intensity": intensity,
                       **{k: res[k] for k in SHIFT_METRICS}})  # fmt: skip
        print(f"all digits: {method} done", flush=True)


def run_part_held_out(store: Store, args: argparse.Namespace) -> None:
    """Near OOD: trained on digits 0-4, scored on test digits 5-9 against 0-4."""
    train_x, train_y = mnist(args.data_dir, "train", (0, 1, 2, 3, 4), args.limit)
    n_val = max(len(train_x) // 12, 2)
    trainset, val = (train_x[:-n_val], train_y[:-n_val]), (train_x[-n_val:], train_y[-n_val:])
    in_x, in_y = mnist(args.data_dir, "test", (0, 1, 2, 3, 4), args.test_limit)
    out_x, _ = mnist(args.data_dir, "test", (5, 6, 7, 8, 9), args.test_limit)
    for method, (predict, seconds) in methods_of(store, "held_out", trainset, val, args, 5).items():
        if store.done(part="held_out", method=method, set="digits_5_9"):
            continue
        clean, out = measure(predict, in_x, in_y, seed=0), measure(predict, out_x, None, seed=1)
        store.add({"part": "held_out", "method": method, "set": "digits_5_9", "train_seconds": seconds,
                   **{k: clean[k] for k in SHIFT_METRICS}, "ood": _ood(clean["scores"], out["scores"]),
                   "scores_in": _sample(clean["scores"]), "scores_out": _sample(out["scores"])})  # fmt: skip
        print(f"digits 0-4: {method} done", flush=True)


#: Scores that need several predictions: one network's single pass has no mutual information or variation ratio.
SPREAD_SCORES = ("mc_mutual_information", "mc_variation_ratio")


def _valid(method: str, scores: Any) -> list[str]:
    """The scores that mean something for ``method`` (not the spread of a single pass)."""
    single = method in ("deterministic", "temp_scaled")
    return [s for s in scores if not (single and s in SPREAD_SCORES)]


def _ood(scores_in: dict[str, np.ndarray], scores_out: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {k: metrics.ood_detection(scores_in[k], scores_out[k]) for k in scores_in}


def _sample(scores: dict[str, np.ndarray], n: int = 400) -> dict[str, list[float]]:
    """Up to n values of each score, for the histograms (the log stays small)."""
    return {k: [round(float(v), 5) for v in s[:: max(1, len(s) // n)][:n]] for k, s in scores.items()}


# --------------------------------------------------------------------------- tables and figures


def _rows(store: Store, **key: Any) -> list[dict[str, Any]]:
    return [r for r in store.rows if all(r.get(k) == v for k, v in key.items())]


def _fmt(v: float) -> str:
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.0f}"


def tables(store: Store) -> str:
    methods = [m for m in METHODS if _rows(store, part="all", method=m, set="test")]
    lines = ["### In distribution (MNIST test set, 10,000 images)", "",
             "| method | accuracy | NLL | ECE | Brier | training seconds |", "|---|---|---|---|---|---|"]  # fmt: skip
    for m in methods:
        r = _rows(store, part="all", method=m, set="test")[0]
        lines.append(f"| {m} | {r['accuracy']:.4f} | {r['nll']:.4f} | {r['ece']:.4f} | {r['brier']:.4f} | "
                     f"{r['train_seconds']:.0f} |")  # fmt: skip
    lines += _targets(store, methods)
    lines += _shift_summary(store, methods)
    lines += _ood_tables(store, methods)
    lines += _per_intensity(store, methods)
    return "\n".join(lines) + "\n"


def _targets(store: Store, methods: list[str]) -> list[str]:
    """The issue's three targets, computed from the log."""
    if "ensemble" not in methods:
        return []
    ens = _shift_means(store, "ensemble", ("rotation",))
    seconds = {m: _rows(store, part="all", method=m, set="test")[0]["train_seconds"] for m in methods}
    lines = ["", "### Targets", ""]
    if ens:
        single = [m for m in MC_METHODS if m in methods and _shift_means(store, m, ("rotation",))]
        within = []
        for m in single:
            r = _shift_means(store, m, ("rotation",))
            ratio_nll, ratio_ece = r["nll"] / ens["nll"], r["ece"] / ens["ece"]
            cheap = seconds[m] <= seconds["ensemble"] / 3
            ok = ratio_nll <= 1.05 and ratio_ece <= 1.05 and cheap
            within.append(ok)
            lines.append(f"- {m}: rotation NLL {r['nll']:.3f} vs ensemble {ens['nll']:.3f} ({ratio_nll:.2f}x), ECE "
                         f"{r['ece']:.4f} vs {ens['ece']:.4f} ({ratio_ece:.2f}x), training {seconds[m]:.0f} s vs "
                         f"{seconds['ensemble']:.0f} s: {'within 5% on both at a third of the time' if ok else 'not within'}")  # fmt: skip
        beats = [m for m in single if any(_shift_means(store, m, ("rotation",))[k] < ens[k] for k in ("nll", "ece"))]
        lines.append(f"- Shift target: {'met' if any(within) and beats else 'missed'} (within 5%: "
                     f"{', '.join(m for m, ok in zip(single, within, strict=True) if ok) or 'none'}; beating the ensemble "
                     f"on NLL or ECE: {', '.join(beats) or 'none'}).")  # fmt: skip
    photos = {m: _rows(store, part="all", method=m, set="photos") for m in methods}
    if photos.get("ensemble"):
        best = {m: max(r[0]["ood"][s]["auroc"] for s in _valid(m, r[0]["ood"])) for m, r in photos.items() if r}
        top = max((m for m in best if m in MC_METHODS), key=lambda m: best[m], default=None)
        if top is not None:
            verdict = "met" if best[top] >= best["ensemble"] else "missed"
            lines.append(f"- OOD target (photo crops): best dropout AUROC {best[top]:.3f} ({top}) vs the ensemble's best "
                         f"{best['ensemble']:.3f}: {verdict}.")  # fmt: skip
    det = _rows(store, part="all", method="deterministic", set="test")
    ts = _rows(store, part="all", method="temp_scaled", set="test")
    if det and ts:
        ratio = ts[0]["ece"] / det[0]["ece"]
        lines.append(f"- Temperature target: test ECE {det[0]['ece']:.4f} -> {ts[0]['ece']:.4f} ({ratio:.2f}x): "
                     f"{'met (at least halved)' if ratio <= 0.5 else 'missed (not halved)'}.")  # fmt: skip
    return lines


def _shift_means(store: Store, method: str, kinds: tuple[str, ...]) -> dict[str, float]:
    rows = [r for k in kinds for r in _rows(store, part="all", method=method, set=k)]
    return {m: float(np.mean([r[m] for r in rows])) for m in SHIFT_METRICS} if rows else {}


def _shift_summary(store: Store, methods: list[str]) -> list[str]:
    corruptions = tuple(k for k in INTENSITIES if k not in ("rotation", "translation"))
    lines = ["", "### Under shift (means over intensities; 2,000 test images per shifted set)", "",
             "| method | rotation NLL | rotation ECE | rotation accuracy | translation NLL | translation ECE | "
             "corruption NLL | corruption ECE |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for m in methods:
        rot, tra, cor = (_shift_means(store, m, k) for k in (("rotation",), ("translation",), corruptions))
        if not rot:
            continue
        lines.append(f"| {m} | {rot['nll']:.3f} | {rot['ece']:.4f} | {rot['accuracy']:.4f} | "
                     f"{tra.get('nll', math.nan):.3f} | {tra.get('ece', math.nan):.4f} | "
                     f"{cor.get('nll', math.nan):.3f} | {cor.get('ece', math.nan):.4f} |")  # fmt: skip
    return lines


def _ood_tables(store: Store, methods: list[str]) -> list[str]:
    lines = []
    for part, name, title in [("all", "photos", "far OOD: crops of photographs"),
                              ("all", "uniform_noise", "uniform noise"), ("all", "gaussian_noise", "Gaussian noise"),
                              ("held_out", "digits_5_9", "near OOD: trained on 0-4, digits 5-9")]:  # fmt: skip
        rows = {m: _rows(store, part=part, method=m, set=name) for m in methods}
        rows = {m: r[0] for m, r in rows.items() if r}
        if not rows:
            continue
        scores = list(next(iter(rows.values()))["ood"])
        lines += ["", f"### OOD detection, {title}: AUROC / FPR95 per score", "",
                  "Higher AUROC and lower FPR95 are better; n/a: a single pass has no spread between samples.", "",
                  "| method | " + " | ".join(scores) + " |", "|---" * (len(scores) + 1) + "|"]  # fmt: skip
        for m, r in rows.items():
            cells = [f"{r['ood'][s]['auroc']:.3f} / {r['ood'][s]['fpr95']:.3f}" if s in _valid(m, scores) else "n/a"
                     for s in scores]  # fmt: skip
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def _per_intensity(store: Store, methods: list[str]) -> list[str]:
    lines = ["", "### Per intensity: NLL / ECE / accuracy", ""]
    for kind in INTENSITIES:
        xs = sorted({r["intensity"] for r in _rows(store, part="all", set=kind)})
        if not xs:
            continue
        lines += [
            f"**{kind}**",
            "",
            "| method | " + " | ".join(f"{x:g}" for x in xs) + " |",
            "|---" * (len(xs) + 1) + "|",
        ]
        for m in methods:
            by = {r["intensity"]: r for r in _rows(store, part="all", method=m, set=kind)}
            cells = [
                f"{by[x]['nll']:.2f} / {by[x]['ece']:.3f} / {by[x]['accuracy']:.3f}" if x in by else "" for x in xs
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def figures(store: Store, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    methods = [m for m in METHODS if _rows(store, part="all", method=m, set="test")]
    corruptions = tuple(k for k in INTENSITIES if k not in ("rotation", "translation"))
    for name, kinds, label in [("rotation", ("rotation",), "rotation (degrees)"),
                               ("translation", ("translation",), "translation (pixels)"),
                               ("corruptions", corruptions, "corruption severity (mean over six)")]:  # fmt: skip
        results: dict[str, dict[float, dict[str, float]]] = {}
        for m in methods:
            test = _rows(store, part="all", method=m, set="test")[0]
            by: dict[float, list[dict[str, Any]]] = {}
            for k in kinds:
                for r in _rows(store, part="all", method=m, set=k):
                    by.setdefault(r["intensity"], []).append(r)
            if by:
                results[m] = {0.0: {k: test[k] for k in SHIFT_METRICS}}
                results[m].update(
                    {x: {k: float(np.mean([r[k] for r in rs])) for k in SHIFT_METRICS} for x, rs in by.items()}
                )
        if results:
            out = bayesdrop.plots.shift_curves(results, xlabel=label)
            path = folder / f"shift_{name}.png"
            out["fig"].savefig(path, dpi=110)
            plt.close(out["fig"])
            paths.append(path)
    paths += _ood_figure(store, methods, folder, plt)
    return paths


def _ood_figure(store: Store, methods: list[str], folder: Path, plt: Any) -> list[Path]:
    rows = {m: _rows(store, part="all", method=m, set="photos") for m in methods}
    rows = {m: r[0] for m, r in rows.items() if r}
    if not rows:
        return []
    fig, axes = plt.subplots(2, math.ceil(len(rows) / 2), figsize=(3.6 * math.ceil(len(rows) / 2), 6.4), squeeze=False)
    for ax, (m, r) in zip(axes.ravel(), rows.items(), strict=False):
        best = max(_valid(m, r["ood"]), key=lambda s: r["ood"][s]["auroc"])
        bayesdrop.plots.ood_histogram(r["scores_in"][best], r["scores_out"][best], ax=ax, xlabel=best)
        ax.set_title(f"{m}: AUROC {r['ood'][best]['auroc']:.3f}", fontsize="small")
    for ax in axes.ravel()[len(rows) :]:
        ax.axis("off")
    fig.suptitle("MNIST test (in) against crops of photographs (out): each method's best score")
    fig.tight_layout()
    path = folder / "ood_photos.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


# --------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=Path("shift_ood.md"), help="Markdown tables (log: <out>.jsonl)")
    ap.add_argument("--work-dir", type=Path, default=None, help="trained models (default: <out stem>_models/)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--members", type=int, default=5, help="ensemble size")
    ap.add_argument("--num-samples", type=int, default=50, help="MC samples T")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--shifts", nargs="+", default=list(INTENSITIES), choices=list(INTENSITIES))
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny settings: 1,000 training images, 1 epoch")
    args = ap.parse_args(argv)
    args.limit = args.test_limit = None
    args.shift_size, args.ood_size = 2000, 2000
    if args.smoke:
        args.limit, args.test_limit, args.shift_size, args.ood_size = 1200, 300, 100, 100
        args.epochs, args.members, args.num_samples = 1, 2, 3
    args.work_dir = args.work_dir or args.out.with_name(args.out.stem + "_models")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    store = Store(args.work_dir, Path(str(args.out) + ".jsonl"))
    start = time.perf_counter()
    run_part_all(store, args)
    run_part_held_out(store, args)
    text = tables(store)
    preamble = (
        f"Made by `python examples/benchmarks/shift_ood.py --data-dir ../shared/data/mnist --out {args.out}`: an MLP "
        f"784-200-200-10 for every method, Adam at lr 0.001, batch 128, {args.epochs} epochs on 55,000 training images "
        f"(the last 5,000 are the validation split of the temperature), T = {args.num_samples} MC samples, a "
        f"{args.members}-member ensemble; the protocol is in the script's docstring. Training seconds were measured "
        "on 2 shared cores while other jobs ran: read them as rough. Figures: `shift_ood/`.\n\n"
    )
    atomic_write(args.out, f"# Shift and OOD benchmark\n\n{preamble}{text}")
    paths = figures(store, args.out.with_name(args.out.stem))
    print(text)
    print(f"wrote {args.out} and {len(paths)} figures in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
