"""Compiled STGCN against tests/paper_refs/stgcn.py (written from eqs 157-160).

The reference builds I and the degree matrix D explicitly, where the block uses the equal
(A + I) / 2; it loads the randomised compiled state_dict with strict=True. Both modules'
outputs, both adjacency maps and the gradients (float64) are compared.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.stgcn import STGCNReference

TOL = {"rtol": 1e-3, "atol": 1e-5}  # A = E²/ΣE² amplifies float32 rounding (test_specs.py)
CASES = [  # tests/test_specs.py SETTINGS, then the default P = 4 on 16-row maps
    pytest.param({"C": 24, "H": 14, "P": 2}, 14, id="C24-H14-P2"),
    pytest.param({"C": 40, "H": 22, "P": 11}, 22, id="C40-H22-P11"),
    pytest.param({"C": 32, "H": 16}, 16, id="C32-H16-P4"),
]
SHAPES = [pytest.param((3, 6, 9), id="n3_t6_w9"), pytest.param((1, 5, 4), id="n1_t5_w4")]


def _pair(hp: dict, seed: int = 0):
    return h.paired("stgcn", hp, STGCNReference(hp["C"], hp.get("P", 4)), seed=seed)


def _input(hp: dict, hh: int, shape, seed: int) -> torch.Tensor:
    n, t, ww = shape
    return torch.randn(n, t, hp["C"], hh, ww, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("hp", "hh"), CASES)
def test_matches_reference_in_eval_mode(hp, hh, shape):
    m, ref = _pair(hp)
    x = _input(hp, hh, shape, seed=1)
    with torch.no_grad():
        (y, y_s), att = m.eval()(x, return_attention=True)
        want_y, want_ys, want_at, want_as = ref.eval()(x)
    torch.testing.assert_close(y, want_y, **TOL)
    torch.testing.assert_close(y_s, want_ys, **TOL)
    torch.testing.assert_close(att["a_t"], want_at, **TOL)
    torch.testing.assert_close(att["a_s"], want_as, **TOL)


@pytest.mark.parametrize(("hp", "hh"), CASES)
def test_backward_matches_reference(hp, hh):
    m, ref = _pair(hp, seed=2)
    m.double()
    ref.double()
    x = _input(hp, hh, (2, 3, 5), seed=3).double().requires_grad_()
    y, y_s = m(x)
    want_y, want_ys = ref(x)[:2]
    g = torch.Generator().manual_seed(4)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    gs = torch.randn(y_s.shape, generator=g, dtype=torch.float64)
    params = dict(m.named_parameters())
    ref_params = dict(ref.named_parameters())
    got = torch.autograd.grad((y * gy).sum() + (y_s * gs).sum(), [x, *params.values()])
    exp = torch.autograd.grad((want_y * gy).sum() + (want_ys * gs).sum(),
                              [x, *(ref_params[k] for k in params)])
    for name, a, b in zip(["x", *params], got, exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)
