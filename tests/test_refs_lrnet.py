"""Compiled LR-Net local relation layer against the reference built from the authors' kernel.

Outputs and weight maps in eval mode at two settings and two input shapes (the compiled
offsets buffer restored to its values after the harness randomises every tensor), gradients,
the geometry grid itself, and the near-zero weight of taps outside the map.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.lrnet import LocalRelationReference, from_compiled, offset_grid

CASES = [
    pytest.param({"C": 24, "m": 4, "k": 5, "kw": 3}, id="C24-m4-k5x3"),
    pytest.param({"C": 40, "m": 8, "k": 3, "kw": 7}, id="C40-m8-k3x7"),
]
SHAPES = [pytest.param((2, 6, 9), id="n2_h6_w9"), pytest.param((1, 5, 11), id="n1_h5_w11")]


def _pair(hyper: dict, seed: int):
    ref = LocalRelationReference(hyper["C"], hyper["m"], hyper["k"], hyper["kw"])
    m, ref = h.paired("lrnet", hyper, ref, from_compiled, seed=seed)
    # the offsets are a constant, not a weight: put back what randomize_ replaced
    grid = offset_grid(hyper["k"], hyper["kw"])
    m.state_dict()["offsets.weight"].copy_(grid[0])
    ref.position.copy_(grid)
    return m, ref


def test_offsets_buffer_is_the_window_grid():
    m = h.compile_spec("lrnet", {"C": 24, "m": 4, "k": 5, "kw": 3})
    torch.testing.assert_close(m.state_dict()["offsets.weight"], offset_grid(5, 3)[0])
    assert "offsets.weight" not in dict(m.named_parameters())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_the_kernel_reference(hyper, shape):
    m, ref = _pair(hyper, seed=3)
    m.eval()
    x = h.nchw(hyper["C"], shape, seed=4)
    with torch.no_grad():
        y, maps = m(x, return_attention=True)
        want, att = ref(x)
    torch.testing.assert_close(y, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(maps["a"], att.permute(0, 1, 4, 5, 2, 3), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hyper", CASES)
def test_gradients_match(hyper):
    m, ref = _pair(hyper, seed=5)
    x = h.nchw(hyper["C"], (2, 5, 8), seed=6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    (m(x1) * w).sum().backward()
    (ref(x2)[0] * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
    grads = from_compiled({k: p.grad for k, p in m.named_parameters()})
    for name, p in ref.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-5,
                                   msg=lambda s, name=name: f"{name}: {s}")


def test_taps_outside_the_map_get_almost_no_weight():
    m, _ = _pair({"C": 24, "m": 4, "k": 5, "kw": 3}, seed=8)
    m.eval()
    with torch.no_grad():
        _, maps = m(h.nchw(24, (1, 6, 7), seed=9), return_attention=True)
    corner = maps["a"][0, :, 0, 0]                       # [G, Kh=5, Kw=3] at pixel (0, 0)
    assert torch.all(corner[:, :2] < 1e-30) and torch.all(corner[:, :, 0] < 1e-30)
    torch.testing.assert_close(corner[:, 2:, 1:].sum(dim=(1, 2)), torch.ones(6))
