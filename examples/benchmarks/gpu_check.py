"""GPU check: the layers, ``sample``, ``fit`` and ``evaluate`` on CUDA against the CPU, and their timings.

Every check compares statistics, not bits (CUDA and the CPU draw different
Gaussian noise): a layer's MC mean and variance on each device against the
analytic values within z standard errors, the MC predictive of a network on
each device against each other, a short ``fit`` on both reaching similar
losses, and ``evaluate`` giving the same metrics within Monte Carlo error.
Then a table of timings (median of repeats, CUDA synchronised), among them
``DropoutClassifier``'s seconds per epoch on each device.

Run on a GPU machine: ``python examples/benchmarks/gpu_check.py`` (exit
status 1 when a check fails). Without CUDA, ``--smoke`` runs the same checks
with the CPU standing in for the GPU, so the script stays tested.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from statistics import NormalDist

import torch
from sklearn.datasets import load_digits
from torch import nn

import bayesdrop
from bayesdrop.mlp import Method
from bayesdrop.nn import Dropout, GaussianDropout, VariationalLinear
from bayesdrop.sklearn import DropoutClassifier

Z = NormalDist().inv_cdf(1 - 1e-6 / 2)  # per-check false-failure probability 1e-6


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()  # warm-up (kernels, caches)
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def check_layers(device: torch.device, n: int) -> list[tuple[str, bool, str]]:
    """MC mean and variance of single layers on ``device`` against their analytic values."""
    rows = []
    x = torch.full((1, 256), 2.0, device=device)
    for name, layer, var in [
        ("Dropout(0.3)", Dropout(0.3), 4.0 * 0.3 / 0.7),  # x^2 p / (1 - p)
        ("GaussianDropout(0.3)", GaussianDropout(0.3), 4.0 * 0.3 / 0.7),
    ]:
        s = bayesdrop.sample(layer.to(device), x, n, seed=0).double()
        mean_err = (s.mean(0) - 2.0).abs().max().item()
        var_err = (s.var(0) - var).abs().max().item()
        # SE of a mean: sqrt(var / n); of a variance: about var * sqrt(2 / n) (Gaussian; Bernoulli is close).
        ok = mean_err <= Z * math.sqrt(var / n) and var_err <= Z * var * math.sqrt(2.5 / n)
        rows.append((f"{name} mean/var on {device.type}", ok, f"max |err| {mean_err:.4f} / {var_err:.4f}"))
    torch.manual_seed(0)
    lin = VariationalLinear(16, 4, init_log_alpha=-1.0).to(device)
    xin = torch.randn(1, 16, device=device)
    s = bayesdrop.sample(lin, xin, n, seed=0).double()
    with torch.no_grad():
        mean = torch.nn.functional.linear(xin, lin.weight, lin.bias).double()
        lrt_var = torch.nn.functional.linear(xin**2, lin.weight**2 * lin.log_alpha.exp()).double()
    ok = bool(((s.mean(0) - mean).abs() <= Z * (lrt_var / n).sqrt()).all())
    rows.append((f"VariationalLinear LRT mean on {device.type}", ok, f"max |err| {(s.mean(0) - mean).abs().max():.4f}"))
    return rows


def _digits(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 16.0, dtype=torch.float32, device=device), torch.tensor(y, device=device)


def _net(device: torch.device) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10)).to(device)


def check_pipeline(devices: list[torch.device], epochs: int, num_samples: int) -> list[tuple[str, bool, str]]:
    """fit, sample and evaluate on each device; the results must agree within Monte Carlo error."""
    rows, runs = [], {}
    for device in devices:
        x, y = _digits(device)
        net = _net(device)
        h = bayesdrop.fit(
            net, (x, y), likelihood=bayesdrop.Categorical(), epochs=epochs, lr=3e-3, seed=0, progress=False
        )
        ev = bayesdrop.evaluate(net, x, y, num_samples=num_samples, seed=0)
        probs = torch.softmax(bayesdrop.sample(net, x[:20], num_samples, seed=1).double(), -1).cpu()
        runs[device.type] = (h, ev, probs, net)
        rows.append(
            (f"fit on {device.type} learns", h.loss[-1] < 0.8 * h.loss[0], f"loss {h.loss[0]:.3f} -> {h.loss[-1]:.3f}")
        )
    if len(runs) == 2:
        (h0, _, _, net0), (h1, _, _, net1) = runs.values()
        rel = abs(h0.loss[-1] - h1.loss[-1]) / h0.loss[-1]
        rows.append(("fit: final loss CPU vs CUDA", rel < 0.25, f"{h0.loss[-1]:.4f} vs {h1.loss[-1]:.4f}"))
        # The same weights on both devices: the MC predictives must agree within Monte Carlo error.
        net1.load_state_dict({k: v.to(devices[1]) for k, v in net0.state_dict().items()})
        x0, x1 = _digits(devices[0])[0][:20], _digits(devices[1])[0][:20]
        p0 = torch.softmax(bayesdrop.sample(net0, x0, num_samples, seed=2).double(), -1).cpu()
        p1 = torch.softmax(bayesdrop.sample(net1, x1, num_samples, seed=2).double(), -1).cpu()
        se = ((p0.var(0) + p1.var(0)) / num_samples).sqrt()
        ok = bool(((p0.mean(0) - p1.mean(0)).abs() <= Z * se + 1e-6).all())
        rows.append(
            (
                "sample: MC predictive CPU vs CUDA (same weights)",
                ok,
                f"max |diff| {(p0.mean(0) - p1.mean(0)).abs().max():.4f}",
            )
        )
        y = _digits(devices[0])[1]
        e0 = bayesdrop.evaluate(net0, _digits(devices[0])[0], y, num_samples=num_samples, seed=3)
        e1 = bayesdrop.evaluate(net1, _digits(devices[1])[0], _digits(devices[1])[1], num_samples=num_samples, seed=3)
        diff = abs(e0.mc["nll"] - e1.mc["nll"])
        rows.append(
            ("evaluate: MC NLL CPU vs CUDA (same weights)", diff < 0.02, f"{e0.mc['nll']:.4f} vs {e1.mc['nll']:.4f}")
        )
        det = abs(e0.deterministic["nll"] - e1.deterministic["nll"])
        rows.append(("evaluate: deterministic NLL CPU vs CUDA", det < 1e-4, f"|diff| {det:.2e}"))
    return rows


def check_consistent(device: torch.device) -> list[tuple[str, bool, str]]:
    """``sample(consistent=True)`` on ``device``: one mask per sample shared by every example, whatever the chunks."""
    x = _digits(device)[0][:64]
    net = _net(device).eval()
    a = bayesdrop.sample(net, x, 16, seed=0, consistent=True)
    b = bayesdrop.sample(net, x, 16, seed=0, consistent=True, chunk_size=7)
    drop = nn.Sequential(nn.Dropout(0.25)).to(device)
    s = bayesdrop.sample(drop, torch.ones(8, 2000, device=device), 20, seed=1, consistent=True)
    shared = bool(torch.equal(s, s[:, :1].expand_as(s)))
    kept = float((s[:, 0] > 0).double().mean())
    ok_rate = abs(kept - 0.75) <= Z * math.sqrt(0.75 * 0.25 / (20 * 2000))
    return [
        (f"consistent masks on {device.type}: chunk size does not matter", bool(torch.allclose(a, b, atol=1e-5)),
         f"max |diff| {(a - b).abs().max():.2e}"),
        (f"consistent masks on {device.type}: one mask for every example, rate 0.75", shared and ok_rate,
         f"shared {shared}, kept {kept:.4f}"),
    ]  # fmt: skip


def _device_timings(device: torch.device, num_samples: int, n: int, repeats: int) -> dict[str, str]:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Dropout(0.2), nn.Linear(784, 800), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(800, 800), nn.ReLU(), nn.Dropout(0.5), nn.Linear(800, 10),
    ).to(device)  # fmt: skip
    x = torch.randn(n, 784, device=device)
    layer = VariationalLinear(784, 800).to(device)
    opt = torch.optim.Adam(layer.parameters())
    xb = torch.randn(1024, 784, device=device)

    def step() -> None:
        opt.zero_grad()
        (layer(xb).square().mean() + layer.kl() / 60000).backward()
        opt.step()

    return {
        f"sample T={num_samples}, N={n} (784-800-800-10, ms)": f"{_median_ms(lambda: bayesdrop.sample(net, x, num_samples), device, repeats):.1f}",
        "VariationalLinear(784, 800) training step, batch 1024 (ms)": f"{_median_ms(step, device, repeats):.2f}",
    }


def _epoch_seconds(method: Method, batch_size: int, device: torch.device, rows: int, repeats: int) -> float:
    """Seconds of one ``DropoutClassifier`` epoch on 784-d rows with two hidden layers of 800 (2x800)."""
    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(rows, 784, generator=gen).numpy(), torch.randint(0, 10, (rows,), generator=gen).numpy()

    def fit(epochs: int) -> float:
        est = DropoutClassifier(
            (800, 800), method, epochs=epochs, batch_size=batch_size, early_stopping=False,
            temperature_scaling=False, device=device, random_state=0,
        )  # fmt: skip
        t = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - t

    fit(1)  # warm-up (threads, kernels, allocator)
    # One fit's set-up (scaling, the network, moving to the device) cancels in the difference.
    return statistics.median((fit(3) - fit(1)) / 2 for _ in range(repeats))


def timings(devices: list[torch.device], num_samples: int, n: int, repeats: int, rows: int = 10_000) -> list[str]:
    """Median ms of ``sample`` on the 784-800-800-10 dropout net and of one variational training step;
    seconds per epoch of the estimator on ``rows`` rows (scaled to MNIST's 60,000)."""
    per_device = [_device_timings(d, num_samples, n, repeats) for d in devices]
    cases: list[tuple[Method, int]] = [
        ("mc", 64),
        ("variational", 64),
        ("concrete", 64),
        ("mc", 512),
        ("variational", 512),
    ]
    for method, batch in cases:
        name = f"DropoutClassifier 2x800, {method}, batch {batch}: s per epoch of 60,000 rows"
        for d, t in zip(devices, per_device, strict=True):
            t[name] = f"{_epoch_seconds(method, batch, d, rows, max(1, repeats // 5)) * 60_000 / rows:.2f}"
    lines = ["| operation | " + " | ".join(d.type for d in devices) + " |", "|---|" + "---|" * len(devices)]
    lines += [f"| {name} | " + " | ".join(t[name] for t in per_device) + " |" for name in per_device[0]]
    return lines


def main(argv: list[str] | None = None) -> list[tuple[str, bool, str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run; the CPU stands in for a missing GPU")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        sys.exit("gpu_check: CUDA is not available on this machine (use --smoke to run the checks on the CPU)")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if cuda else [])
    n_mc, epochs, t, n, repeats = (2000, 2, 10, 32, 2) if args.smoke else (100_000, 30, 200, 1000, 10)
    print(f"devices: {', '.join(str(d) for d in devices)}" + ("" if cuda else " (no CUDA: CPU checks only)"))
    rows = [r for d in devices for r in check_layers(d, n_mc)] + check_pipeline(devices, epochs, t)
    rows += [r for d in devices for r in check_consistent(d)]
    print("| check | ok | detail |\n|---|---|---|")
    for name, ok, detail in rows:
        print(f"| {name} | {'yes' if ok else 'NO'} | {detail} |")
    print()
    print("\n".join(timings(devices, 10 if args.smoke else 100, n, repeats, 200 if args.smoke else 10_000)))
    if not args.smoke and not all(ok for _, ok, _ in rows):
        sys.exit(1)
    return rows


if __name__ == "__main__":
    main()
