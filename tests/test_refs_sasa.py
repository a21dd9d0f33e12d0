"""Compiled SASA against the reference written from the paper's eq. (44).

Outputs and attention maps in eval mode at two hyperparameter settings and two input shapes,
gradients of a backward pass, the treatment of positions outside the map, and the defaults.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.sasa import SASAReference, from_compiled

CASES = [
    pytest.param({"C": 12, "heads": 2, "k": 5, "kw": 3}, id="C12-h2-k5x3"),
    pytest.param({"C": 30, "heads": 3, "k": 3, "kw": 7}, id="C30-h3-k3x7-oddE"),
]
SHAPES = [pytest.param((2, 6, 9), id="n2_h6_w9"), pytest.param((1, 4, 11), id="n1_h4_w11")]


def _pair(hyper: dict, seed: int):
    ref = SASAReference(hyper["C"], hyper["heads"], hyper["k"], hyper["kw"])
    return h.paired("sasa", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_the_paper_reference(hyper, shape):
    m, ref = _pair(hyper, seed=3)
    m.eval()
    x = h.nchw(hyper["C"], shape, seed=4)
    with torch.no_grad():
        y, maps = m(x, return_attention=True)
        want, att = ref(x)
    torch.testing.assert_close(y, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(maps["a"], att, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hyper", CASES)
def test_gradients_match(hyper):
    m, ref = _pair(hyper, seed=5)
    x = h.nchw(hyper["C"], (2, 5, 8), seed=6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    (m(x1) * w).sum().backward()
    (ref(x2)[0] * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
    grads = dict(ref.named_parameters())
    for name, p in m.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-5,
                                   msg=lambda s, name=name: f"{name}: {s}")


def test_taps_outside_the_map_stay_in_the_softmax():
    """Zero keys outside the map still get weight exp(q·r) (the usual code's zero padding)."""
    m, _ = _pair({"C": 12, "heads": 2, "k": 5, "kw": 3}, seed=8)
    m.eval()
    with torch.no_grad():
        _, maps = m(h.nchw(12, (1, 4, 6), seed=9), return_attention=True)
    corner = maps["a"][0, :, 0, 0]                      # [heads, Kh, Kw] at pixel (0, 0)
    assert torch.all(corner[:, :2, :] > 0) and torch.all(corner[:, :, :1] > 0)
    torch.testing.assert_close(maps["a"].sum(dim=(-2, -1)), torch.ones(1, 2, 4, 6))


def test_defaults_are_the_papers():
    m = h.compile_spec("sasa", {"C": 64})
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    # 8 heads of 8 channels: 4 + 4 embedding channels over a 7 x 7 window
    assert shapes["rel_h"] == (4, 7) and shapes["rel_w"] == (4, 7)
    assert shapes["query_conv.weight"] == (64, 64, 1, 1)
