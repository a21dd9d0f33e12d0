"""DistributedDataParallel: two gloo processes on CPU train compiled blocks in step.

Two processes train (1) a small CNN around a compiled CBAM block and (2) ResNet-18 with SE
blocks for a few SGD steps, each on its half of every global batch. DDP averages the
gradients, so the replicas must end bit-identical, and equal (to float rounding) to one
process training on the full batches: the mean of the two half-batch gradients is the
full-batch gradient. Both train with their BatchNorms (CBAM's spatial-gate BN included) in
eval mode, frozen statistics: BN in train mode normalises each replica's half batch on its
own, which a single process on the full batch cannot reproduce (SyncBatchNorm would, but
needs GPUs).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WORLD = 2
STEPS = 3
LR = 0.05
# case -> (global batch, image size)
CASES = {"block": (6, 8), "backbone": (4, 32)}


def _ddp_train():
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module("ddp_train")


def build(case: str) -> nn.Module:
    import attncc

    ex = _ddp_train()
    if case == "block":
        torch.manual_seed(0)
        block = attncc.compile("cbam", C=8, r=2, k=3)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), block, nn.AdaptiveAvgPool2d(1),
                              nn.Flatten(), nn.Linear(8, 10))
    else:
        model = ex.build("resnet18", "se", seed=0, size=32, r=8)
    return model.eval()  # frozen BN statistics (CBAM's own BN too); see the module docstring


def run_case(case: str, rank: int = 0, world: int = 1) -> tuple[nn.Module, list[float]]:
    ex = _ddp_train()
    model = build(case)
    batch, size = CASES[case]
    batches = ex.synthetic_batches(1, batch, size, 10, STEPS)
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    losses = ex.train(trained, batches, LR, rank, world)
    return model, losses


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        for case in CASES:
            model, losses = run_case(case, rank, world)
            torch.save({"state": model.state_dict(), "losses": losses},
                       Path(out) / f"{case}_{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(WORLD, str(out / "rendezvous"), str(out)), nprocs=WORLD,
             join=True)
    return {(case, r): torch.load(out / f"{case}_{r}.pt") for case in CASES
            for r in range(WORLD)}


@pytest.mark.parametrize("case", list(CASES))
def test_ddp_replicas_stay_identical_and_match_one_process(replicas, case):
    a, b = replicas[(case, 0)], replicas[(case, 1)]
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), f"replicas differ at {k}"
    single, _ = run_case(case)
    state, fresh = single.state_dict(), build(case).state_dict()
    for k, v in a["state"].items():
        torch.testing.assert_close(v, state[k], rtol=1e-4, atol=1e-5, msg=f"at {k}")
    assert not all(torch.equal(v, fresh[k]) for k, v in a["state"].items())  # it trained
    # the two shards saw different data
    assert a["losses"] != b["losses"]


def test_ddp_trains_the_attention_blocks(replicas):
    fresh = build("backbone").state_dict()
    trained = replicas[("backbone", 0)]["state"]
    moved = [k for k in trained if ".attn." in k and not torch.equal(trained[k], fresh[k])]
    assert moved and all(".attn." in k for k in moved)
