"""Compiled RGA (spatial, then channel relation-aware global attention) against the code.

The reference (tests/paper_refs/rga.py) is the authors' RGA_Module; it loads the compiled
state_dict with strict=True. Outputs and both attention maps are compared in eval mode at two
settings and two batch sizes (each setting fixes H, W), then one float64 training step.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.rga import RGAModule, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "H": 5, "W": 7, "cha_ratio": 2, "spa_ratio": 2, "down_ratio": 2},
                 id="C24-5x7-c2-s2-d2"),
    pytest.param({"C": 48, "H": 8, "W": 7, "cha_ratio": 4, "spa_ratio": 2, "down_ratio": 2},
                 id="C48-8x7-c4-s2-d2"),
]
BATCHES = [pytest.param(3, id="n3"), pytest.param(1, id="n1")]


def _pair(hyper: dict, seed: int = 0):
    ref = RGAModule(hyper["C"], hyper["H"] * hyper["W"], cha_ratio=hyper["cha_ratio"],
                    spa_ratio=hyper["spa_ratio"], down_ratio=hyper["down_ratio"])
    return h.paired("rga", hyper, ref, from_compiled, seed=seed)


def _input(hyper: dict, n: int, seed: int) -> torch.Tensor:
    return h.nchw(hyper["C"], (n, hyper["H"], hyper["W"]), seed)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, n):
    m, ref = _pair(hyper)
    x = _input(hyper, n, seed=1)
    (y, att), (y_ref, a_s, a_c) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["xs.a"], a_s[:, 0], **TOL)        # the code's [N, 1, H, W]
    torch.testing.assert_close(att["y.a"], a_c[:, :, 0, 0], **TOL)   # the code's [N, C, 1, 1]


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """BN's batch statistics, its running buffers, and one backward (float64)."""
    m, ref = _pair(hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = _input(hyper, 3, seed=3).double()
    y_m, (y_ref, _, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, **TOL)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_m)
    params_m = dict(m.named_parameters())
    params_ref = dict(ref.named_parameters())
    names = [k.split(".", 1)[1] for k in params_m]
    assert set(names) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in names], g)
    for name, a, b in zip(names, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=1e-9, atol=1e-10, msg=name)
