"""A sigmoid unit's eval pass is the NWGM of its dropout ensemble, and close to the ensemble's mean.

Claims (Baldi & Sadowski 2013, "Understanding dropout"): for a sigmoid unit
whose inputs are dropped, the normalised weighted geometric mean (NWGM) of
its outputs over all sub-networks is exactly the sigmoid of the expected
input, which is what the weight-scaled (eval-mode) pass computes; the
ensemble's arithmetic mean E[sigma(S)] is approximated by the NWGM, and the
approximation holds through deeper layers, where it is no longer exact.

For a trained 784-512-512-10 sigmoid net (dropout 0.2 on the inputs, 0.5 on
the hidden units), on test images: per hidden unit of each layer, the MC
ensemble mean E[sigma(S)] (T samples) against the eval pass, and the MC
NWGM, sigma(E_MC[S]), against the eval pass (equal up to MC error in the
first layer); on the output, ``bayesdrop.metrics.ensemble_gap`` between the
MC softmax average and the eval pass over the test set.

    python examples/reproductions/nwgm.py --epochs 20 --out reproductions/nwgm
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mnist import DEFAULT_DATA, cli, cross_entropy, errors, finish, save_json, splits, train  # noqa: F401 (DEFAULT_DATA: the suite skips the script without it)

import bayesdrop
from bayesdrop.metrics import ensemble_gap


def sigmoid_net() -> nn.Sequential:
    d = bayesdrop.nn.Dropout
    return nn.Sequential(
        d(0.2), nn.Linear(784, 512), nn.Sigmoid(), d(0.5), nn.Linear(512, 512), nn.Sigmoid(), d(0.5), nn.Linear(512, 10)
    )


def unit_gaps(model: nn.Sequential, x: torch.Tensor, upto: int, t: int) -> dict[str, float]:
    """Layer ending at index ``upto`` (a Linear): ensemble mean and MC NWGM of its sigmoid against the eval pass."""
    head = model[: upto + 1]
    s = bayesdrop.sample(head, x, t, seed=0).double()  # (T, N, U) pre-activations under dropout
    with torch.no_grad():
        head.eval()
        det = torch.sigmoid(head(x).double())  # the eval pass: weight scaling
    mean = torch.sigmoid(s).mean(0)  # E[sigma(S)], the ensemble's arithmetic mean
    nwgm = torch.sigmoid(s.mean(0))  # sigma(E[S]) = G / (G + G'), the NWGM
    spread = torch.sigmoid(s).std(0)
    return {
        "mean_abs(E[sigma] - eval)": float((mean - det).abs().mean()),
        "max_abs(E[sigma] - eval)": float((mean - det).abs().max()),
        "mean_abs(NWGM_MC - eval)": float((nwgm - det).abs().mean()),
        "mean_std_of_sigma(S)": float(spread.mean()),
    }


def main(argv: list[str] | None = None) -> str:
    ap = cli(__doc__, out="reproductions/nwgm", epochs=20, smoke="2,000 train / 500 test images, 1 epoch, T = 50")
    ap.add_argument("--samples", type=int, default=1000, help="T for the per-unit comparison (on 1,000 images)")
    args = ap.parse_args(argv)
    epochs, t = (1, 50) if args.smoke else (args.epochs, args.samples)
    out = Path(args.out)
    x, y, xt, yt = splits(args, 2000, 500)
    started = time.perf_counter()
    torch.manual_seed(0)
    model = sigmoid_net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = train(model, x, y, epochs=epochs, loss_fn=cross_entropy, optimizer=opt, desc="sigmoid net")
    model.eval()
    sub = xt[:1000]
    layers = {"hidden 1": unit_gaps(model, sub, 1, t), "hidden 2": unit_gaps(model, sub, 4, t)}
    mc = torch.softmax(bayesdrop.sample(model, xt, 100, seed=1).double(), -1).mean(0).numpy()
    with torch.no_grad():
        det = torch.softmax(model(xt).double(), -1).numpy()
    gap = ensemble_gap(mc, det, yt.numpy())
    results = {
        "epochs": epochs,
        "test_errors_eval": errors(model, xt, yt),
        "test_errors_mc100": int((mc.argmax(1) != yt.numpy()).sum()),
        "units": layers,
        "output_gap": gap,
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    save_json(out / "results.json", results)

    import matplotlib.pyplot as plt

    head = model[:2]
    s = bayesdrop.sample(head, sub[:200], t, seed=2).double()
    with torch.no_grad():
        det1 = torch.sigmoid(head(sub[:200]).double())
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(det1.flatten()[:20000], torch.sigmoid(s).mean(0).flatten()[:20000], s=2, alpha=0.3)
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set_xlabel("eval pass = NWGM")
    ax.set_ylabel(f"ensemble mean E[sigma(S)] (T = {t})")
    ax.set_title("first hidden layer, 200 test images")

    h1, h2 = layers["hidden 1"], layers["hidden 2"]
    settings = f"784-512-512-10 sigmoid, {epochs} epochs, T = {t}, {len(sub)} test images"
    return finish(
        out,
        fig,
        "nwgm_vs_mean.png",
        [
            (
                "NWGM of a sigmoid unit = eval pass (exact, first layer)",
                "exact (Baldi & Sadowski)",
                f"mean abs diff {h1['mean_abs(NWGM_MC - eval)']:.4f} (MC error only)",
                settings,
            ),
            (
                "ensemble mean approx. NWGM, layer 1",
                "good approximation",
                f"mean abs diff {h1['mean_abs(E[sigma] - eval)']:.4f} (unit spread {h1['mean_std_of_sigma(S)']:.3f})",
                settings,
            ),
            (
                "ensemble mean approx. NWGM, layer 2",
                "good approximation",
                f"mean abs diff {h2['mean_abs(E[sigma] - eval)']:.4f} (unit spread {h2['mean_std_of_sigma(S)']:.3f})",
                settings,
            ),
            (
                "output: MC (T = 100) vs eval pass",
                "close",
                f"TV {gap['total_variation']:.4f}, flip rate {gap['flip_rate']:.4f}, errors {results['test_errors_mc100']} vs {results['test_errors_eval']}",
                f"{len(xt)} test images",
            ),
        ],
    )


if __name__ == "__main__":
    main()
