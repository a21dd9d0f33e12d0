"""Compiled modules under torch.compile and torch.export (tiny shapes, fast backends).

`backend="eager"` runs dynamo's graph capture without code generation, `"aot_eager"` adds
AOTAutograd's joint forward-backward graph: together they check that the generated modules
trace (no graph break is required, and the results are the same) without the minutes that
Inductor's C++ compile would take on CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attncc

BLOCKS = {
    "cbam": {"r": 4, "k": 3},
    "coordatt": {"r": 4},
    "sk": {"groups": 4, "L": 8},
    "nonlocal": {},
}
SHAPE = (2, 24, 6, 5)


def block(spec: str) -> nn.Module:
    m = attncc.compile(spec, example=torch.empty(SHAPE), seed=0, **BLOCKS[spec])
    return attncc.api.randomize_(m, 1).eval()  # nonzero everywhere: no identity-like init


@pytest.mark.parametrize("spec", list(BLOCKS))
def test_torch_compile_eager_backend(spec):
    m = block(spec)
    x = torch.randn(SHAPE)
    torch._dynamo.reset()
    compiled = torch.compile(m, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), m(x), rtol=1e-5, atol=1e-6)


def test_torch_compile_aot_eager_forward_and_backward():
    m = block("cbam").train()
    x = torch.randn(SHAPE, requires_grad=True)
    torch._dynamo.reset()
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    y = compiled(x)
    (g_x,) = torch.autograd.grad(y.square().sum(), x)
    ref = m(x)
    (r_x,) = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_x, r_x, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", list(BLOCKS))
def test_torch_export(spec):
    m = block(spec)
    x = torch.randn(SHAPE)
    ep = torch.export.export(m, (x,))
    assert set(ep.state_dict) == set(m.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x), rtol=1e-5, atol=1e-6)


def test_torch_export_with_a_dynamic_batch():
    m = block("cbam")
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(m, (torch.randn(SHAPE),), dynamic_shapes=({0: batch},))
    x = torch.randn(5, *SHAPE[1:])
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), m(x), rtol=1e-5, atol=1e-6)


def test_inserted_blocks_are_exported_with_their_hooks():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    new, _ = attncc.insert(net, "se", where=nn.BatchNorm2d, r=2)
    attncc.api.randomize_(new, 2)
    x = torch.randn(2, 3, 7, 6)
    ep = torch.export.export(new, (x,))
    assert any("attn" in k for k in ep.state_dict)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), new(x), rtol=1e-5, atol=1e-6)
