"""attncc.count and `attncc count`: parameters and MACs, checked against FlopCounterMode.

Convention (attncc/counting.py): MACs are the multiply-accumulates of convs, linear layers and
contractions, FLOPs / 2 as torch.utils.flop_counter.FlopCounterMode counts them (it counts
only those ops, without biases). Elementwise ops and reductions are "other FLOPs", which
FlopCounterMode does not count; they are checked here against hand formulas.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import attncc
from attncc import nets
from attncc.cli import main

# spec -> (hyperparameters, an input shape with distinct sizes)
SPECS = {
    "se": ({"r": 4}, (2, 24, 7, 5)),
    "eca": ({}, (2, 24, 7, 5)),
    "cbam": ({"r": 4, "k": 3}, (2, 24, 7, 5)),
    "srm": ({}, (2, 24, 7, 5)),
    "genet": ({"e": 2}, (2, 24, 7, 5)),
    "fcanet": ({"n": 4, "r": 4}, (2, 24, 7, 5)),
    "triplet": ({}, (2, 24, 7, 5)),
    "gct": ({}, (2, 24, 7, 5)),
    "bam": ({"r": 4, "d": 2}, (2, 24, 7, 5)),
    "simam": ({}, (2, 24, 7, 5)),
    "coordatt": ({"r": 4}, (2, 24, 7, 5)),
    "sk": ({"groups": 4, "L": 8}, (2, 24, 7, 5)),
    "gc": ({"r": 4}, (2, 24, 7, 5)),
    "nonlocal": ({}, (2, 24, 6, 4)),
    "danet": ({}, (2, 24, 7, 5)),
    "glore": ({"nodes": 6, "state": 10}, (2, 24, 7, 5)),
}


def flop_counter_macs(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    model.eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*inputs)
    total = fc.get_total_flops()
    assert total % 2 == 0
    return total // 2


@pytest.mark.parametrize("spec", list(SPECS))
def test_compiled_block_macs_match_flop_counter(spec):
    hyper, shape = SPECS[spec]
    m = attncc.compile(spec, example=torch.empty(shape), **hyper)
    c = attncc.count(m, shape)
    assert c.macs == flop_counter_macs(m, torch.randn(shape))
    assert c.params == m.ir.parameter_count() == sum(p.numel() for p in m.parameters())
    assert [r.kind for r in c.rows] == [f"attncc:{m.ir.block}"]


def test_se_other_flops_by_hand():
    n, c, h, w, r = 2, 24, 7, 5, 4
    m = attncc.load("se", C=c, r=r)
    got = attncc.count(m, (n, c, h, w))
    # MACs: two dense layers; other: mean over H W (one add per input), ReLU on C/r,
    # sigmoid (4 per element) on C, and the gating product on every element
    assert got.macs == n * (c * (c // r) + (c // r) * c)
    assert got.other_flops == n * c * h * w + n * (c // r) + 4 * n * c + n * c * h * w


@pytest.mark.parametrize(("net", "kw"), [
    ("resnet18", {}),
    ("resnet18", {"attention": "se"}),
    ("resnet18", {"attention": "cbam", "attention_args": {"r": 8}}),
    ("resnet18", {"attention": "gct"}),
    ("mobilenet_v2", {"attention": "coordatt"}),
])
def test_backbone_macs_match_flop_counter(net, kw):
    m = nets.NETS[net](num_classes=10, **kw)
    c = attncc.count(m, (1, 3, 32, 32))
    assert c.macs == flop_counter_macs(m, torch.randn(1, 3, 32, 32))
    assert c.params == sum(p.numel() for p in m.parameters())
    blocks = [r for r in c.rows if r.kind.startswith("attncc:")]
    assert bool(blocks) == bool(kw)
    assert c.attention().params == sum(p.numel() for n_, p in m.named_parameters()
                                       if ".attn" in n_ or n_.startswith("attn"))


def test_per_layer_rows_by_standard_formulas():
    m = nets.resnet18(num_classes=10)
    rows = {r.name: r for r in attncc.count(m, (1, 3, 32, 32)).rows}
    # stem: 7×7 conv 3 -> 64, stride 2: 16×16 outputs
    assert rows["conv1"].macs == 64 * 16 * 16 * 3 * 7 * 7 and rows["conv1"].params == 9408
    assert rows["bn1"].other == 2 * 64 * 16 * 16 and rows["bn1"].params == 128
    assert rows["maxpool"].other == 64 * 8 * 8 * 9
    assert rows["fc"].macs == 512 * 10 and rows["fc"].params == 5130
    # the shared ReLU of a block is one row, called twice
    assert rows["layer1.0.relu"].calls == 2


def test_count_batch_scales_macs_not_params():
    m = attncc.load("cbam", C=16, r=4)
    one, three = attncc.count(m, (1, 16, 6, 5)), attncc.count(m, (3, 16, 6, 5))
    assert three.macs == 3 * one.macs and three.params == one.params


def test_large_input_counts_on_fake_tensors_as_on_real_ones():
    m = nets.resnet18(num_classes=10, attention="eca")
    fake = attncc.count(m, (1, 3, 80, 72))  # above the threshold: fake tensors
    assert fake.macs == flop_counter_macs(m, torch.randn(1, 3, 80, 72))


def test_cli_count_spec_and_network(capsys):
    assert main(["count", "se", "--shape", "x=1,24,7,5", "--set", "r=4"]) == 0
    out = capsys.readouterr().out
    assert "attncc:SE" in out and "total" in out and f"{2 * 24 * 6:,}" in out
    assert main(["count", "resnet18+se", "--total", "--shape", "x=1,3,32,32"]) == 0
    out = capsys.readouterr().out
    expect = attncc.count(nets.resnet18(attention="se", input_size=32), (1, 3, 32, 32))
    assert f"{expect.macs:,}" in out and f"{expect.params:,}" in out
    assert "layer1.0.conv1" not in out  # --total


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["count", "nope"], 1, "no bundled spec named `nope`"),
    (["count", "resnet18+se", "--placement", "weird"], 1, "unknown placement"),
    (["count", "se", "--stride-in-1x1"], 2, "apply to networks"),
    (["count", "mobilenet_v2", "--set", "r=2"], 2, "need attention"),
])
def test_cli_count_errors(capsys, argv, code, message):
    assert main(argv) == code
    assert message in capsys.readouterr().err
