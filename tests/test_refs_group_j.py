"""Compiled attention gate (Oktay et al., MIDL 2018) against a module written from the official
GridAttentionBlock2D (mode='concatenation'); the reference loads the compiled state_dict with
strict=True through `from_compiled` (W_conv, W_bn -> the official W.0, W.1).
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.attgate import GridAttentionBlock2DReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"C": 24, "Cg": 20, "inter": 12}, id="C24-G20-I12"),
    pytest.param({"C": 40, "Cg": 16, "inter": 8}, id="C40-G16-I8"),
]
# (N, H, W, Hg, Wg); Hs, Ws = H // 2, W // 2. All sizes of a case distinct: phi is resized
# down in one dim and up in the other; the last is U-Net's own case, g at exactly Hs x Ws.
SHAPES = [
    pytest.param((2, 7, 9, 5, 6), id="n2_h7_w9_g5x6"),      # Hs 3 < Hg 5, Ws 4 < Wg 6
    pytest.param((1, 11, 13, 3, 8), id="n1_h11_w13_g3x8"),  # Hs 5 > Hg 3, Ws 6 < Wg 8
    pytest.param((2, 28, 30, 14, 15), id="n2_h28_w30_g14x15"),
]


def _pair(hyper: dict, seed: int = 0):
    ref = GridAttentionBlock2DReference(hyper["C"], hyper["Cg"], hyper["inter"])
    return h.paired("attgate", hyper, ref, from_compiled, seed=seed)


def _inputs(hyper: dict, shape, seed: int) -> list[torch.Tensor]:
    n, hh, ww, hg, wg = shape
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, hyper["C"], hh, ww, generator=gen),
            torch.randn(n, hyper["Cg"], hg, wg, generator=gen)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    xs = _inputs(hyper, shape, seed=1)
    (y, att), (w_y, sigm) = h.eval_both(m, ref, *xs)
    torch.testing.assert_close(y, w_y, **TOL)
    torch.testing.assert_close(att["a"], sigm[:, 0], **TOL)  # the official [N, 1, H, W]


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """BN's batch statistics, its running buffers, and one backward (float64)."""
    m, ref = _pair(hyper, seed=2)
    m.train().double()
    ref.train().double()
    xs = [x.double() for x in _inputs(hyper, (3, 7, 9, 5, 6), seed=3)]
    y_m, (y_ref, _) = m(*xs), ref(*xs)
    torch.testing.assert_close(y_m, y_ref, **TOL)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_m)
    params_m = from_compiled(dict(m.named_parameters()))  # by official name
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("shape", [
    pytest.param((1, 2, 3, 5, 1), id="h2_w3-gate-1x1"),    # Hs = Ws = 1: phi resized 5 -> 1
    pytest.param((2, 5, 64, 1, 41), id="w64-g1x41"),       # 1 -> 2 and 41 -> 32
])
def test_edge_sizes_in_every_backend(shape):
    """NumPy, PyTorch and onnxruntime against the reference where the grids degenerate."""
    hyper = {"C": 24, "Cg": 20, "inter": 12}
    m, ref = _pair(hyper, seed=4)
    m.eval()
    ref.eval()
    x, g = (t.numpy() for t in _inputs(hyper, shape, seed=5))
    with torch.no_grad():
        expected = ref(torch.from_numpy(x), torch.from_numpy(g))[0].numpy()
    results = h.assert_backends_agree(m, {"x": x, "g": g}, label=f"attgate-{shape}")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)
