"""Compiled deformable convolution (Dai et al., ICCV 2017; Zhu et al., CVPR 2019) against a
module written from the papers' equations (tests/paper_refs/dcn.py: eq. (2) with the bilinear
kernel G(q, p) of eqs. (3)-(4), plus v2's modulation); the reference loads the compiled
state_dict (mmcv's parameter names) with strict=True.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from paper_refs.dcn import DCNReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 5, "out": 8}, id="v2-C5-o8"),
    pytest.param({"C": 12, "out": 6, "k": 5, "dilation": 2, "modulated": False, "bias": True},
                 id="v1-C12-o6-k5-d2-bias"),
    pytest.param({"C": 7, "out": 4, "modulated": False}, id="v1-C7-o4"),
]
SHAPES = [  # (N, H, W)
    pytest.param((2, 9, 11), id="n2_h9_w11"),
    pytest.param((3, 10, 13), id="n3_h10_w13"),
]


def _ref(hyper: dict) -> DCNReference:
    return DCNReference(hyper["C"], hyper["out"], hyper.get("k", 3), hyper.get("dilation", 1),
                        hyper.get("modulated", True), hyper.get("bias", False))


def _pair(hyper: dict, seed: int = 0):
    return h.paired("dcn", hyper, _ref(hyper), from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (y_ref, offsets) = h.eval_both(m, ref, x)
    torch.testing.assert_close(att["conv_offset"], offsets, **TOL)
    torch.testing.assert_close(y, y_ref, **TOL)
    # the random offsets are fractional and some reach outside the map
    assert offsets.abs().max() > 1 and (offsets - offsets.round()).abs().max() > 0.1


@pytest.mark.parametrize("hyper", CASES)
def test_zero_offsets_give_a_plain_convolution(hyper):
    """At init conv_offset is zero: v1 is the conv of eq. (36), v2 the same times σ(0) = 0.5."""
    m = h.compile_spec("dcn", hyper).eval()
    assert not torch.any(m.state_dict()["conv_offset.weight"])
    k, dil = hyper.get("k", 3), hyper.get("dilation", 1)
    x = h.nchw(hyper["C"], (2, 9, 11), seed=2)
    sd = m.state_dict()
    want = F.conv2d(x, sd["y.weight"], sd.get("y.bias"), padding=dil * (k - 1) // 2,
                    dilation=dil)
    if hyper.get("modulated", True):
        want = want * 0.5 if "y.bias" not in sd else (want - sd["y.bias"][:, None, None]) * 0.5
    with torch.no_grad():
        torch.testing.assert_close(m(x), want, **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_backward_matches(hyper):
    """Gradients of the input, the offsets' conv and the weights, in float64."""
    m, ref = _pair(hyper, seed=2)
    m.double()
    ref.double()
    x = h.nchw(hyper["C"], (2, 9, 11), seed=3).double().requires_grad_()
    xr = x.detach().clone().requires_grad_()
    y_m, (y_ref, _) = m(x), ref(xr)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    params_m = from_compiled(dict(m.named_parameters()))
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, [x, *params_m.values()], g)
    grads_ref = torch.autograd.grad(y_ref, [xr, *(params_ref[k] for k in params_m)], g)
    for name, a, b in zip(["x", *params_m], grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=name)


@pytest.mark.parametrize("hyper", CASES[:2])
def test_every_backend_matches_reference(hyper):
    m, ref = _pair(hyper, seed=4)
    x = h.nchw(hyper["C"], (2, 3, 10), seed=5)
    with torch.no_grad():
        expected = ref(x)[0].numpy()
    results = h.assert_backends_agree(m, {"x": x.numpy()}, label="dcn-vs-ref")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)
