"""Compiled RSTAN step against tests/paper_refs/rstan.py (written from eqs 145-150).

The reference loads the randomised compiled state_dict with strict=True; the attended clip
feature φ_t, the spatial map α̃ (per frame) and the frame weights β̃ are compared, and the
gradients in float64.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.rstan import RSTANReference

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [  # tests/test_specs.py SETTINGS, then a sharper softmax
    pytest.param({"C": 24, "E": 16, "att": 14}, id="C24-E16-a14"),
    pytest.param({"C": 40, "E": 20, "att": 5, "gamma": 2.0}, id="C40-E20-a5-g2"),
    pytest.param({"C": 32, "E": 12, "att": 10, "gamma": 0.5}, id="C32-E12-a10-g0.5"),
]
SHAPES = [  # (N, T, H, W)
    pytest.param((3, 6, 7, 9), id="n3_t6_h7_w9"),
    pytest.param((1, 2, 11, 5), id="n1_t2_h11_w5"),
]


def _pair(hp: dict, seed: int = 0):
    ref = RSTANReference(hp["C"], hp["E"], hp["att"], hp.get("gamma", 1.0))
    return h.paired("rstan", hp, ref, seed=seed)


def _inputs(hp: dict, shape, seed: int) -> list[torch.Tensor]:
    n, t, hh, ww = shape
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, hp["C"], t, hh, ww, generator=g),
            torch.randn(n, hp["E"], generator=g)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hp", CASES)
def test_matches_reference_in_eval_mode(hp, shape):
    m, ref = _pair(hp)
    xs = _inputs(hp, shape, seed=1)
    with torch.no_grad():
        y, att = m.eval()(*xs, return_attention=True)
        want_y, want_alpha, want_beta = ref.eval()(*xs)
    torch.testing.assert_close(y, want_y, **TOL)
    torch.testing.assert_close(att["alpha"], want_alpha, **TOL)   # [N, T, H, W]
    torch.testing.assert_close(att["beta"], want_beta, **TOL)     # [N, T]


@pytest.mark.parametrize("hp", CASES)
def test_backward_matches_reference(hp):
    m, ref = _pair(hp, seed=2)
    m.double()
    ref.double()
    xs = [x.double().requires_grad_() for x in _inputs(hp, (2, 3, 5, 4), seed=3)]
    y = m(*xs)
    want = ref(*xs)[0]
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    params = dict(m.named_parameters())
    ref_params = dict(ref.named_parameters())
    got = torch.autograd.grad((y * gy).sum(), [*xs, *params.values()])
    exp = torch.autograd.grad((want * gy).sum(), [*xs, *(ref_params[k] for k in params)])
    for name, a, b in zip(["x", "h", *params], got, exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)
