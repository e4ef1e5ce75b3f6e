"""Benchmark: vectorised MC sampling and the cost of a variational layer.

Table 1 times ``bayesdrop.sample`` on the 784-800-800-10 ReLU network of
Hinton et al. 2012 (dropout 0.2 on the input, 0.5 on the hidden layers),
T = 100 samples, built two ways: from torch's ``nn.Dropout`` (the common
case: under ``sampling`` its modules draw bayesdrop's masks) and from
bayesdrop's ``Dropout``. Against

- the usual MC-dropout loop: T forward passes of the torch-built network in
  train mode;
- the floor: the fastest deterministic way to do the same matmuls, the
  network without dropout on the T*N tiled rows, the faster of one pass and
  cache-sized chunks of 2048 rows or of ``sample``'s own chunk size.

The ratio columns give the median over repeats of the per-repeat ratio and,
in brackets, its interquartile range (the run-to-run spread).

Each repeat runs the variants one after the other (interleaved) so that they
share the machine's load; the tables give medians. Table 2 breaks one tiled
chunk down (where the time goes). Table 3 times one
training step (forward, backward, KL) of ``VariationalLinear(784, 800)``
against ``nn.Linear(784, 800)``. The T=1000, N=10000 case runs in a fresh
process to report its peak RSS. Medians of repeated runs, 2 threads.

Run: ``python examples/benchmarks/mc_sampling.py`` (``--smoke`` for a tiny run).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import bayesdrop
from bayesdrop.montecarlo import DEFAULT_CHUNK_BYTES, even_chunks
from bayesdrop.nn import Dropout, VariationalLinear
from bayesdrop.nn import functional as BF


def hinton_net(dropout: type[nn.Module] | None) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for p, (i, o) in zip((0.2, 0.5, 0.5), ((784, 800), (800, 800), (800, 10)), strict=True):
        if dropout is not None:
            layers.append(dropout(p))
        layers += [nn.Linear(i, o), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loop(model: nn.Module, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    with torch.no_grad():
        model.train()
        return torch.stack([model(x) for _ in range(num_samples)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor(model: nn.Module, x: torch.Tensor, num_samples: int, chunk_rows: int | None) -> None:
    with torch.no_grad():
        tiled = x.repeat(num_samples, 1)
        if chunk_rows is None:
            model(tiled)
        else:
            for start in range(0, tiled.shape[0], chunk_rows):
                model(tiled[start : start + chunk_rows])


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def sampling_table(num_samples: int, sizes: list[int], repeats: int, device: torch.device) -> list[dict[str, float]]:
    """Interleave the variants in every repeat so that they see the same load."""
    bd, torch_net, plain = (hinton_net(d).to(device) for d in (Dropout, nn.Dropout, None))
    budget = DEFAULT_CHUNK_BYTES // (800 * 4)  # sample sizes chunks by the widest activation (800 floats)
    rows = []
    for n in sizes:
        x = torch.randn(n, 784, device=device)
        own_chunk = even_chunks(num_samples * n, n, budget)  # the chunks sample uses
        variants: dict[str, Callable[[], object]] = {
            "sample_torch": lambda x=x: bayesdrop.sample(torch_net, x, num_samples),
            "sample_own": lambda x=x: bayesdrop.sample(bd, x, num_samples),
            "loop": lambda x=x: loop(torch_net, x, num_samples),
            "floor_one_pass": lambda x=x: floor(plain, x, num_samples, None),
            "floor_2048": lambda x=x: floor(plain, x, num_samples, 2048),
            "floor_own_chunk": lambda x=x, c=own_chunk: floor(plain, x, num_samples, c),
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        for fn in variants.values():
            fn()  # warm-up
        for _ in range(repeats if n >= 1000 else 3 * repeats):
            for key, fn in variants.items():
                sync(device)
                start = time.perf_counter()
                fn()
                sync(device)
                times[key].append(time.perf_counter() - start)
        floors = [
            min(a, b, c)
            for a, b, c in zip(times["floor_one_pass"], times["floor_2048"], times["floor_own_chunk"], strict=True)
        ]
        r: dict[str, float] = {"N": n, "floor": statistics.median(floors)}
        cells = []
        for key in ("sample_torch", "sample_own", "loop"):
            ratios = [t / f for t, f in zip(times[key], floors, strict=True)]
            lo, mid, hi = _quartiles(ratios)
            r[key] = statistics.median(times[key])
            r[key + "_ratio"] = mid
            cells.append(f"{r[key] * 1e3:.1f} | {mid:.2f}x [{lo:.2f}, {hi:.2f}]")
        rows.append(r)
        print(f"| {n} | {' | '.join(cells)} | {r['floor'] * 1e3:.1f} |", flush=True)
    return rows


def breakdown(rows: int, repeats: int, device: torch.device) -> None:
    x = torch.randn(rows, 800, device=device)
    w = torch.randn(800, 800, device=device)
    g = torch.Generator(device).manual_seed(0)
    parts = {
        "matmul (rows x 800 x 800)": lambda: x @ w.T,
        "torch F.dropout p=0.5": lambda: F.dropout(x, 0.5, True),
        "torch.rand mask + multiply": lambda: x.mul(torch.rand(x.shape, device=device) >= 0.5).mul_(2.0),
        "bayesdrop bernoulli_mask p=0.5 (four 16-bit fields per hash)": lambda: BF.bernoulli_mask(
            x.shape, 0.5, device=device, generator=g
        ),
        "bayesdrop dropout p=0.5": lambda: BF.dropout(x, 0.5, generator=g),
    }
    for name, fn in parts.items():

        def timed(fn: Callable[[], object] = fn) -> None:
            fn()
            sync(device)

        print(f"| {name} | {median_time(timed, repeats) * 1e3:.2f} |", flush=True)


def training_table(batches: list[int], repeats: int, device: torch.device) -> None:
    """Interleave the two steps so that both see the same machine load."""
    for batch in batches:
        x = torch.randn(batch, 784, device=device)
        torch.manual_seed(0)
        var = VariationalLinear(784, 800).train().to(device)
        lin = nn.Linear(784, 800).to(device)

        def step_var(var: VariationalLinear = var, x: torch.Tensor = x) -> None:
            var.zero_grad()
            (var(x).pow(2).mean() + var.kl() / 60_000).backward()

        def step_lin(lin: nn.Linear = lin, x: torch.Tensor = x) -> None:
            lin.zero_grad()
            lin(x).pow(2).mean().backward()

        times: dict[str, list[float]] = {"var": [], "lin": []}
        for _ in range(repeats):
            for key, fn in (("var", step_var), ("lin", step_lin)):
                sync(device)
                start = time.perf_counter()
                fn()
                sync(device)
                times[key].append(time.perf_counter() - start)
        tv, tl = statistics.median(times["var"]), statistics.median(times["lin"])
        print(f"| {batch} | {tv * 1e3:.2f} | {tl * 1e3:.2f} | {tv / tl:.2f}x |", flush=True)


def big_case(num_samples: int, n: int) -> dict[str, float]:
    model = hinton_net(Dropout)
    x = torch.randn(n, 784)
    start = time.perf_counter()
    out = bayesdrop.sample(model, x, num_samples, seed=0)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"T": num_samples, "N": n, "seconds": elapsed, "peak_rss_mib": peak, "output_mib": out.numel() * 4 / 2**20}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--big", nargs=2, type=int, metavar=("T", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--skip-memory", action="store_true", help="skip the T=1000, N=10000 memory run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: the timing tables on that device")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.big:
        print(json.dumps(big_case(*args.big)))
        return
    smoke = args.smoke
    t, sizes, reps = (5, [1, 4], 1) if smoke else (100, [1, 32, 1000], 5)
    device = torch.device(args.device)
    print(f"## MC sampling, T={t}, {args.threads} threads, {device.type} (median ms; time / floor [IQR])\n")
    print(
        "| N | sample, torch nn.Dropout net | / floor | sample, bayesdrop Dropout net | / floor "
        "| loop of T forwards (torch net) | / floor | floor (no dropout) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    sampling_table(t, sizes, reps, device)
    chunk = 64 if smoke else DEFAULT_CHUNK_BYTES // (784 * 4)
    print(f"\n## Where the time goes: one chunk of {chunk} rows x 800 features (median ms)\n")
    print("| operation | ms |\n|---|---|")
    breakdown(chunk, reps if smoke else 20, device)
    print("\n## One training step: VariationalLinear(784, 800) vs nn.Linear(784, 800) (median ms)\n")
    print("| batch | VariationalLinear | nn.Linear | ratio |\n|---|---|---|---|")
    training_table([8, 16] if smoke else [128, 1024], 2 if smoke else 200, device)
    if args.skip_memory:
        return
    big = ["5", "10"] if smoke else ["1000", "10000"]
    out = subprocess.run(
        [sys.executable, __file__, "--big", *big, "--threads", str(args.threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n## Bounded memory: T={r['T']}, N={r['N']}\n")
    print(
        f"{r['seconds']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB "
        f"(of which the (T, N, 10) float32 result is {r['output_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
