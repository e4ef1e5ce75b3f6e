"""Benchmark: scoring an MNIST pool for active learning (BALD at T = 100) with the CNN of Gal et al. 2017.

Variants, each computing the BALD score of every pool image from T MC-dropout
passes of the same weights:

- ``bayesdrop.active.acquire``: consistent masks; the network's noise-free
  head (the two convolutions and the max-pool, before the first dropout) runs
  once per image, the stochastic tail T times;
- ``bayesdrop.sample``: independent masks (the same head split), then BALD;
- ``loop``: the usual MC-dropout loop, T forward passes of the whole network
  in train mode per batch, BALD from running sums;
- ``baal``: ``baal.modelwrapper.ModelWrapper(MCDropoutModule(net))
  .predict_on_dataset(..., iterations=T)`` and ``baal.active.heuristics.BALD``
  (when baal is installed: the peer environment of ``shared/bench``);
- ``floor``: the fastest known way to do the same arithmetic, without noise:
  the head once per image, the tail on the T copies of its output in eval mode.

Each repeat runs the variants one after the other (interleaved, the same
machine load); the table gives the median seconds per 1,000 pool images and
the ratio to ``acquire``. One thread. The pool is the first N MNIST training
images (random images of the same shape where the files are absent: the time
does not depend on the pixels).

Run: ``python examples/benchmarks/active_scoring.py --N 1000 4000`` (``--smoke`` for a tiny run).

A whole pool (``--chunks``): the pool of N images is cut into chunks of ``--chunk`` images; each chunk is scored
by every chosen variant in turn (the order rotated from chunk to chunk), its times appended to ``--log`` (JSON
lines), so a run can stop and resume, and ``--shard i/n`` lets n processes share the chunks (one thread each).
The table sums the chunks: the seconds each variant took to score the whole pool, and the median of the
per-chunk ratios. ``python examples/benchmarks/active_scoring.py --chunks --N 60000 --chunk 2000 --log
pool.jsonl --shard 0/2 --variants acquire loop "baal (T passes)"``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reproductions"))
from _mnist import DEFAULT_DATA as MNIST_DIR
from _mnist import mnist
from active_learning import gal_cnn

import bayesdrop
from bayesdrop import active
from bayesdrop.montecarlo import deterministic_head


def pool_images(n: int, data_dir: Path) -> torch.Tensor:
    if (data_dir / "train-images-idx3-ubyte.gz").exists():
        return mnist(data_dir, "train", limit=n, flat=False)[0]
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def bald_from_probs(probs: torch.Tensor) -> torch.Tensor:
    """BALD of (T, N, K) probabilities."""
    return active.acquisition_scores(probs.log(), "bald")


@torch.no_grad()
def loop_scores(net: nn.Module, x: torch.Tensor, t_count: int, batch: int) -> torch.Tensor:
    """T train-mode forward passes per batch; BALD from running sums of p and p log p."""
    net.train()
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        mean = ent = None
        for _ in range(t_count):
            p = torch.softmax(net(xb).double(), -1)
            mean = p if mean is None else mean + p
            e = -torch.special.xlogy(p, p).sum(-1)
            ent = e if ent is None else ent + e
        assert mean is not None and ent is not None
        mean /= t_count
        out.append(-torch.special.xlogy(mean, mean).sum(-1) - ent / t_count)
    net.eval()
    return torch.cat(out)


@torch.no_grad()
def floor_scores(net: nn.Module, x: torch.Tensor, t_count: int, batch: int) -> torch.Tensor:
    """The head once per image, the eval-mode tail on T copies of its output (no noise), BALD of the result."""
    head, tail = deterministic_head(net.eval(), False)
    assert head is not None
    out = []
    for i in range(0, len(x), batch):
        h = head(x[i : i + batch])
        probs = torch.stack([torch.softmax(tail(h), -1) for _ in range(t_count)])
        out.append(bald_from_probs(probs))
    return torch.cat(out)


@functools.cache
def torchvision_shim() -> None:
    """Where torchvision's compiled ops cannot load on the CPU torch (the peer environment), declare the two op
    schemas its import registers fakes for, as ``shared/bench/peers.py`` does; nothing here uses them."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    try:
        torch.ops.load_library(os.path.join(os.path.dirname(spec.origin), "_C.so"))
    except Exception:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)


_KEEP: list[object] = []


def baal_scores(net: nn.Module, x: torch.Tensor, t_count: int, batch: int, replicate: bool) -> torch.Tensor:
    """baal 2.x: ``ModelWrapper(MCDropoutModule(net)).predict_on_dataset`` -> (N, K, T) logits -> BALD."""
    import copy

    from baal.active.heuristics import BALD
    from baal.bayesian.dropout import MCDropoutModule
    from baal.modelwrapper import ModelWrapper, TrainingArgs

    args = TrainingArgs(use_cuda=False, batch_size=batch, replicate_in_memory=replicate, workers=0,
                        criterion=nn.CrossEntropyLoss())  # fmt: skip
    wrapped = ModelWrapper(MCDropoutModule(copy.deepcopy(net)), args)
    wrapped.eval()
    ds = TensorDataset(x, torch.zeros(len(x), dtype=torch.long))
    logits = wrapped.predict_on_dataset(ds, iterations=t_count, verbose=False)
    probs = torch.softmax(torch.as_tensor(logits).double(), 1).numpy()  # (N, K, T)
    return torch.as_tensor(BALD().get_uncertainties(probs))


def variants(net: nn.Module, x: torch.Tensor, t_count: int, batch: int) -> dict[str, Callable[[], object]]:
    out: dict[str, Callable[[], object]] = {
        "acquire": lambda: active.acquire(net, x, min(10, len(x)), num_samples=t_count, seed=0, batch_size=batch),
        "sample": lambda: bald_from_probs(torch.softmax(bayesdrop.sample(net, x, t_count, seed=0).double(), -1)),
        "loop": lambda: loop_scores(net, x, t_count, batch),
        "floor": lambda: floor_scores(net, x, t_count, batch),
    }
    try:
        torchvision_shim()
        import baal  # noqa: F401
    except ImportError:
        return out
    # baal's replicate_in_memory tiles a batch T times in one pass: 32 images (3,200 rows at T = 100) keep the
    # convolutions' activations near 250 MB; without it, T passes per batch of ``batch`` images.
    out["baal (replicate, batch 32)"] = lambda: baal_scores(net, x, t_count, 32, True)
    out["baal (T passes)"] = lambda: baal_scores(net, x, t_count, batch, False)
    return out


def done_chunks(log: Path) -> dict[int, dict]:
    """The chunk records already in the log (a truncated last line, from a killed run, is skipped)."""
    out: dict[int, dict] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            out[rec["chunk"]] = rec
    return out


def run_chunks(net: nn.Module, args: argparse.Namespace) -> None:
    """Score the chunks of this shard not yet in the log, every variant in turn on each, appending as they finish."""
    shard_s, _, shards_s = args.shard.partition("/")
    if not (shard_s.isdigit() and shards_s.isdigit() and int(shard_s) < int(shards_s)):
        raise SystemExit(f"--shard must be i/n with 0 <= i < n (for example 0/2). Got {args.shard!r} instead.")
    if args.chunk < 1:
        raise SystemExit(f"--chunk must be at least 1. Got {args.chunk} instead.")
    shard, shards = int(shard_s), int(shards_s)
    x = pool_images(args.N[0], args.data_dir)
    starts = list(range(0, len(x), args.chunk))
    done = done_chunks(args.log)
    settings = {"N": len(x), "chunks": len(starts), "T": args.T, "batch": args.batch}
    for rec in done.values():
        if any(rec[k] != v for k, v in settings.items()):
            raise SystemExit(f"--log {args.log} holds chunks of another run ({ {k: rec[k] for k in settings} }); "
                             f"this one is {settings}: give another --log")  # fmt: skip
    for i in range(shard, len(starts), shards):
        if i in done:
            continue
        fns = variants(net, x[starts[i] : starts[i] + args.chunk], args.T, args.batch)
        names = [v for v in args.variants if v in fns]
        if len(names) != len(args.variants):
            raise SystemExit(
                f"--variants: unknown or unavailable {sorted(set(args.variants) - set(fns))}; have {list(fns)}"
            )
        names = names[i % len(names) :] + names[: i % len(names)]
        times = {}
        for name in names:
            start = time.perf_counter()
            fns[name]()
            times[name] = time.perf_counter() - start
        rec = {"N": len(x), "chunk": i, "chunks": len(starts), "size": min(args.chunk, len(x) - starts[i]),
               "T": args.T, "batch": args.batch, "times": times}  # fmt: skip
        with args.log.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"chunk {i + 1}/{len(starts)}: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), flush=True)


def chunk_table(log: Path) -> str:
    """Whole-pool seconds per variant (the sum over chunks), per 1,000 images, and ratios to ``acquire``."""
    recs = sorted(done_chunks(log).values(), key=lambda r: r["chunk"])
    if not recs:
        raise SystemExit(f"--log: no chunk records in {log}")
    names = list(recs[0]["times"])
    images = sum(r["size"] for r in recs)
    total = {k: sum(r["times"][k] for r in recs) for k in names}
    rows = []
    for k in names:
        med = statistics.median(r["times"][k] / r["times"]["acquire"] for r in recs)
        rows.append(
            f"| {k} | {total[k]:.0f} | {1000 * total[k] / images:.2f} | {total[k] / total['acquire']:.2f} | {med:.2f} |"
        )
    head = (f"BALD scores of {images:,} of the {recs[0]['N']:,} pool images ({len(recs)} of {recs[0]['chunks']} chunks of "
            f"{recs[0]['size']:,}), T = {recs[0]['T']}, one thread, the variants in turn on each chunk")  # fmt: skip
    return "\n".join([head, "", "| variant | seconds, whole pool | s per 1,000 images | time / acquire | median chunk ratio |",
                      "|---|---|---|---|---|", *rows])  # fmt: skip


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--N", type=int, nargs="+", default=[1000, 4000], help="pool sizes")
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000, help="pool images per batch (all variants)")
    ap.add_argument("--data-dir", type=Path, default=MNIST_DIR)
    ap.add_argument("--out", type=Path, default=None, help="write the table here (and the raw times as .json)")
    ap.add_argument("--smoke", action="store_true", help="N = 40, T = 4, one repeat")
    ap.add_argument(
        "--chunks", action="store_true", help="score the whole pool of N[0] images chunk by chunk (resumable)"
    )
    ap.add_argument("--chunk", type=int, default=2000, help="images per chunk (with --chunks)")
    ap.add_argument("--log", type=Path, default=None, help="chunk times, JSON lines (with --chunks; resumes from it)")
    ap.add_argument("--shard", default="0/1", help="i/n: this process scores chunks i, i + n, ... (with --chunks)")
    ap.add_argument("--variants", nargs="+", default=["acquire", "sample", "floor", "loop", "baal (T passes)"])
    ap.add_argument(
        "--table-only", action="store_true", help="with --chunks: print the table from the log, score nothing"
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.N, args.T, args.repeats, args.batch = [40], 4, 1, 16
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = gal_cnn().eval()
    if args.chunks:
        if args.log is None:
            raise SystemExit("--chunks needs --log (the chunk times are appended there)")
        if args.smoke:
            args.chunk = 16
        if not args.table_only:
            run_chunks(net, args)
        text = chunk_table(args.log)
        print(text)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(args.out)
        return text
    rows, raw = [], {}
    for n in args.N:
        x = pool_images(n, args.data_dir)
        fns = variants(net, x, args.T, args.batch)
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        raw[n] = times
        ours = statistics.median(times["acquire"])
        for name, ts in times.items():
            med = statistics.median(ts)
            rows.append(f"| {n} | {name} | {1000 * med / n:.2f} | {med / ours:.2f} |")
    text = "\n".join(
        [f"BALD scores of an MNIST pool, T = {args.T}, one thread, median of {args.repeats} interleaved repeats", "",
         "| pool N | variant | s per 1,000 images | time / acquire |", "|---|---|---|---|", *rows]
    )  # fmt: skip
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    return text


if __name__ == "__main__":
    main()
