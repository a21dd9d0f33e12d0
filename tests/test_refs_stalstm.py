"""Compiled STA-LSTM step against tests/paper_refs/stalstm.py (written from eqs 141-144).

The reference loads the randomised compiled state_dict with strict=True; outputs (the attended
joints and the frame weight β), the joint attention α and the gradients are compared.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.stalstm import STALSTMReference

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [  # tests/test_specs.py SETTINGS, then NTU's 25 joints in 3-D
    pytest.param({"J": 15, "D": 2, "E": 16, "att": 12}, id="J15-D2-E16-a12"),
    pytest.param({"J": 21, "D": 5, "E": 18, "att": 9}, id="J21-D5-E18-a9"),
    pytest.param({"J": 25, "D": 3, "E": 32, "att": 20}, id="J25-D3-E32-a20"),
]
BATCHES = [pytest.param(7, id="n7"), pytest.param(1, id="n1")]


def _pair(hp: dict, seed: int = 0):
    ref = STALSTMReference(hp["J"], hp["D"], hp["E"], hp["att"])
    return h.paired("stalstm", hp, ref, seed=seed)


def _inputs(hp: dict, n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, hp["J"], hp["D"], generator=g), torch.randn(n, hp["E"], generator=g)]


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("hp", CASES)
def test_matches_reference_in_eval_mode(hp, n):
    m, ref = _pair(hp)
    xs = _inputs(hp, n, seed=1)
    with torch.no_grad():
        (y, beta), att = m.eval()(*xs, return_attention=True)
        want_y, want_beta, want_alpha = ref.eval()(*xs)
    torch.testing.assert_close(y, want_y, **TOL)
    torch.testing.assert_close(beta, want_beta, **TOL)
    torch.testing.assert_close(att["alpha"], want_alpha, **TOL)
    torch.testing.assert_close(att["beta"], want_beta, **TOL)


@pytest.mark.parametrize("hp", CASES)
def test_backward_matches_reference(hp):
    m, ref = _pair(hp, seed=2)
    m.double()
    ref.double()
    xs = [x.double().requires_grad_() for x in _inputs(hp, 5, seed=3)]
    y, beta = m(*xs)
    want_y, want_beta, _ = ref(*xs)
    g = torch.Generator().manual_seed(4)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64)
    gb = torch.rand(beta.shape, generator=g, dtype=torch.float64)
    params = dict(m.named_parameters())
    ref_params = dict(ref.named_parameters())
    got = torch.autograd.grad((y * gy).sum() + (beta * gb).sum(), [*xs, *params.values()])
    want = torch.autograd.grad((want_y * gy).sum() + (want_beta * gb).sum(),
                               [*xs, *(ref_params[k] for k in params)])
    for name, a, b in zip(["x", "h", *params], got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)


def test_frame_weight_is_relu():
    """β is ReLU(...): non-negative, and zero exactly where the pre-activation is negative."""
    hp = {"J": 15, "D": 2, "E": 16, "att": 12}
    m = _pair(hp)[0]
    with torch.no_grad():
        m.w_xp.bias.fill_(-100.0)
        _, beta = m.eval()(*_inputs(hp, 4, seed=5))
    assert torch.equal(beta, torch.zeros(4))
