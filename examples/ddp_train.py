"""Train a backbone with compiled attention blocks under DistributedDataParallel.

Every process builds the same model (same seed), wraps it in DistributedDataParallel and
trains on its shard of each global batch; DDP averages the gradients, so the replicas stay
identical. The data are synthetic (seeded random images and labels), so the script runs
anywhere; replace `synthetic_batches` with a DataLoader over a DistributedSampler for real data.

    # many GPUs on one machine (NCCL); BatchNorm becomes SyncBatchNorm
    torchrun --standalone --nproc_per_node=8 examples/ddp_train.py --net resnet50 --spec se

    # several machines: the same on each, with its rank
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29500 examples/ddp_train.py --net resnet50 --spec cbam

    # two CPU processes (gloo), a few steps at a tiny size
    torchrun --standalone --nproc_per_node=2 examples/ddp_train.py --device cpu \\
        --net resnet18 --spec eca --size 32 --batch 8 --steps 3

The compiled blocks are ordinary nn.Modules: DDP, SyncBatchNorm conversion (of the
backbone's nn.BatchNorm2d layers; a block's own batch_norm ops keep per-GPU statistics),
torch.compile and state_dict checkpoints apply to them unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attncc import nets


def build(net: str, spec: str | None, seed: int, num_classes: int = 10,
          size: int = 224, **attention_args: object) -> nn.Module:
    """The same model on every rank: seeded before any parameter is made."""
    torch.manual_seed(seed)
    return nets.NETS[net](attention=spec, attention_args=attention_args or None,
                          num_classes=num_classes, input_size=size)


def synthetic_batches(seed: int, batch: int, size: int, num_classes: int,
                      steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The global batches, identical on every rank (each rank then takes its shard)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield (torch.randn(batch, 3, size, size, generator=g),
               torch.randint(0, num_classes, (batch,), generator=g))


def shard(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's equal share of a global batch (the batch must divide evenly)."""
    if t.shape[0] % world:
        raise ValueError(f"global batch {t.shape[0]} does not split over {world} processes")
    n = t.shape[0] // world
    return t[rank * n:(rank + 1) * n]


def train(model: nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
          lr: float, rank: int = 0, world: int = 1, device: str = "cpu",
          log: bool = False) -> list[float]:
    """SGD on each batch's shard; with world > 1, `model` is a DDP wrapper. Returns the
    per-step losses of this rank's shard."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for step, (images, labels) in enumerate(batches):
        x = shard(images, rank, world).to(device)
        y = shard(labels, rank, world).to(device)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP: gradients all-reduced (averaged) across ranks here
        opt.step()
        losses.append(loss.item())
        if log and rank == 0:
            print(f"step {step}: loss {losses[-1]:.4f} (rank 0's shard)")
    return losses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", default="resnet50", choices=sorted(nets.NETS))
    p.add_argument("--spec", default="se", help="attention spec (`none` for the plain net)")
    p.add_argument("--set", action="append", default=[], metavar="K=V",
                   help="a hyperparameter of the blocks, e.g. --set r=8")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64, help="global batch (all ranks)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="rank 0 writes the trained state_dict here")
    args = p.parse_args(argv)

    cuda = args.device == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")  # torchrun's env:// rendezvous
    rank, world = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    hyper = {k: int(v) if v.lstrip("-").isdigit() else float(v)
             for k, _, v in (s.partition("=") for s in args.set)}
    spec = None if args.spec == "none" else args.spec
    model = build(args.net, spec, args.seed, size=args.size, **hyper)
    if cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None)
    batches = synthetic_batches(args.seed + 1, args.batch, args.size, 10, args.steps)
    train(ddp, batches, args.lr, rank, world, device, log=True)
    if args.save and rank == 0:
        torch.save(model.state_dict(), args.save)
        print(f"wrote {args.save}")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
