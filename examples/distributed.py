"""Several processes: fit a learned-noise classifier under DDP, evaluate with all-reduced metrics.

Launch with torchrun (one process per GPU, or several on the CPU with gloo):

    torchrun --nproc_per_node=2 examples/distributed.py --out digits-ddp

Without torchrun it runs as one process. bayesdrop ships no launcher: this
script starts the process group itself, wraps the model in
``DistributedDataParallel`` and gives ``fit`` and ``evaluate`` loaders with a
``DistributedSampler``. ``fit`` uses the global dataset size in the ELBO,
counts the KL once per step, sets the sampler's epoch and writes checkpoints
and progress bars on rank 0 only; ``evaluate`` gathers and all-reduces, so
every rank prints the metrics of the whole test set; rank 0 writes the report.

Data: scikit-learn's digits (built in). ``--smoke`` for a tiny run.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import bayesdrop
from bayesdrop.nn import VariationalLinear


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
    ds = TensorDataset(x, y)
    if dist.is_initialized():
        return DataLoader(ds, batch_size=batch_size, sampler=DistributedSampler(ds, shuffle=shuffle, seed=0))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--out", default="digits-ddp", help="report folder (written by rank 0)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file; an existing one is resumed")
    parser.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    args = parser.parse_args(argv)
    epochs, num_samples = (3, 5) if args.smoke else (args.epochs, args.num_samples)

    owned = "RANK" in os.environ and "WORLD_SIZE" in os.environ and not dist.is_initialized()  # torchrun's
    if owned:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    xtr, xte = torch.tensor(Xtr, dtype=torch.float32), torch.tensor(Xte, dtype=torch.float32)
    ytr_t, yte_t = torch.tensor(ytr), torch.tensor(yte)

    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    net: nn.Module = nn.Sequential(
        VariationalLinear(64, 128, init_log_alpha=-3.0), nn.ReLU(), VariationalLinear(128, 10, init_log_alpha=-3.0)
    ).to(device)
    model = nn.parallel.DistributedDataParallel(net) if dist.is_initialized() else net

    start = time.perf_counter()
    history = bayesdrop.fit(
        model,
        _loader(xtr, ytr_t, 64, shuffle=True),
        likelihood=bayesdrop.Categorical(),
        epochs=epochs,
        lr=3e-3,
        kl_warmup_epochs=epochs // 4,
        checkpoint=args.checkpoint,
        resume=args.checkpoint is not None,
        seed=0,
        progress=not args.smoke,
    )
    seconds = time.perf_counter() - start
    ev = bayesdrop.evaluate(net, _loader(xte, yte_t, 128, shuffle=False), num_samples=num_samples, seed=0)
    world = dist.get_world_size() if dist.is_initialized() else 1
    print(
        f"rank {rank} of {world}: {epochs} epochs in {seconds:.1f} s, final loss {history.loss[-1]:.4f}; "
        f"test N={len(ev.targets)} accuracy {ev.mc['accuracy']:.4f} NLL {ev.mc['nll']:.4f} ECE {ev.mc['ece']:.4f} "
        f"(deterministic accuracy {ev.deterministic['accuracy']:.4f})"
    )
    if rank == 0:
        ev.meta.update(example="examples/distributed.py", processes=world)
        out = bayesdrop.write_report(ev, args.out, overwrite=True)
        print(f"rank 0 wrote {out}/index.html")
    if owned:
        dist.barrier()
        dist.destroy_process_group()
    return {"accuracy": ev.mc["accuracy"], "nll": ev.mc["nll"]}


if __name__ == "__main__":
    main()
