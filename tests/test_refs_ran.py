"""Compiled residual attention module (Wang et al., CVPR 2017; stage-2 form) against a
transcription of the most-used PyTorch port (tengshaofeng/ResidualAttentionNetwork-pytorch),
which loads the compiled state_dict through `from_compiled` with strict=True (the port's
upsampling, bilinear with align_corners=True, included).
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.ran import AttentionModule_stage2, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [pytest.param({"C": 24}, id="C24"), pytest.param({"C": 56}, id="C56")]
# (N, H, W): odd and even maps, H != W; 28 x 30 is near the module's own 28 x 28 stage
SHAPES = [pytest.param((2, 7, 9), id="n2_h7_w9"), pytest.param((3, 28, 30), id="n3_h28_w30"),
          pytest.param((1, 3, 10), id="n1_h3_w10")]


def _pair(hyper: dict, seed: int = 0):
    ref = AttentionModule_stage2(hyper["C"], hyper["C"])
    return h.paired("ran", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (want_y, want_mask) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, want_y, **TOL)
    torch.testing.assert_close(att["mask"], want_mask, **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """BN's batch statistics, its running buffers, and one backward (float64)."""
    m, ref = _pair(hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = h.nchw(hyper["C"], (3, 11, 13), seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    params_m = from_compiled(dict(m.named_parameters()))
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=name)
