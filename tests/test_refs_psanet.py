"""Compiled PSANet (bi-directional point-wise spatial attention) against the authors' code.

The reference (tests/paper_refs/psanet.py) runs the code's PSA with its Python psamask loop;
it loads the compiled state_dict with strict=True. Outputs and both [N, H*W, H, W] attention
maps are compared in eval mode at two settings and two batch sizes (the map size is fixed by
each setting), then one float64 training step (BN statistics, running buffers, gradients).
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.psanet import PSA, from_compiled, psa_mask

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "mid": 8, "H": 5, "W": 6}, id="C24-m8-5x6"),
    pytest.param({"C": 40, "mid": 12, "H": 6, "W": 5}, id="C40-m12-6x5"),
]
BATCHES = [pytest.param(3, id="n3"), pytest.param(1, id="n1")]


def _pair(hyper: dict, seed: int = 0):
    ref = PSA(hyper["C"], hyper["mid"], hyper["H"], hyper["W"])
    return h.paired("psanet", hyper, ref, from_compiled, seed=seed)


def _input(hyper: dict, n: int, seed: int) -> torch.Tensor:
    return h.nchw(hyper["C"], (n, hyper["H"], hyper["W"]), seed)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, n):
    m, ref = _pair(hyper)
    x = _input(hyper, n, seed=1)
    (y, att), (y_ref, col_ref, dis_ref) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["y_col"], col_ref, **TOL)
    torch.testing.assert_close(att["y_dis"], dis_ref, **TOL)


@pytest.mark.parametrize("table", ["psa_collect", "psa_distribute"])
def test_index_table_is_the_psamask_loop(table):
    """The gather through the compiled table equals the code's psamask on a counting input."""
    hh, ww = 4, 7
    m = h.compile_spec("psanet", {"C": 8, "mid": 4, "H": hh, "W": ww})
    index = m.state_dict()[f"{'y_col' if table == 'psa_collect' else 'y_dis'}.index"]
    mask = torch.arange((2 * hh - 1) * (2 * ww - 1) * hh * ww, dtype=torch.float64)
    want = psa_mask(mask.view(1, -1, hh, ww), 0 if table == "psa_collect" else 1)[0]
    assert torch.equal(mask[index], want)


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
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)
