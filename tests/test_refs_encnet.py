"""Compiled context encoding module (Zhang et al., CVPR 2018) against the official EncModule
and Encoding layer (zhanghang1989/PyTorch-Encoding), written out in tests/paper_refs/encnet.py;
the reference loads the compiled state_dict with strict=True through `from_compiled`.
"""

from __future__ import annotations

import math

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.encnet import EncModuleReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
# the official output relu(x + x·γ), and eq. (17)'s x·γ (preset `survey`)
CASES = [
    pytest.param({"C": 24, "width": 12, "codes": 8}, id="C24-D12-K8-official"),
    pytest.param({"C": 20, "width": 16, "codes": 6, "res": 0}, id="C20-D16-K6-survey"),
]
SHAPES = [pytest.param((2, 7, 9), id="n2_h7_w9"), pytest.param((3, 5, 11), id="n3_h5_w11")]


def _pair(hyper: dict, seed: int = 0):
    ref = EncModuleReference(hyper["C"], hyper["width"], hyper["codes"],
                             official=hyper.get("res", 1) == 1)
    return h.paired("encnet", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (y_ref, gamma, _) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["s"], gamma, **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """Both BNs' batch statistics and running buffers, and one backward (float64)."""
    m, ref = _pair(hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = h.nchw(hyper["C"], (3, 7, 9), seed=3).double()
    y_m, y_ref = m(x), ref(x)[0]
    torch.testing.assert_close(y_m, y_ref, **TOL)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_m)
    names = [k for k, _ in m.named_parameters()]
    grads_m = from_compiled(dict(zip(names, torch.autograd.grad(y_m, list(m.parameters()), g),
                                     strict=True)))
    params_ref = dict(ref.named_parameters())
    assert set(grads_m) == set(params_ref)
    grads_ref = torch.autograd.grad(y_ref, list(params_ref.values()), g)
    for name, b in zip(params_ref, grads_ref, strict=True):
        torch.testing.assert_close(grads_m[name], b, rtol=1e-8, atol=1e-10, msg=name)


def test_every_backend_matches_reference():
    hyper = {"C": 24, "width": 12, "codes": 8}
    m, ref = _pair(hyper, seed=4)
    ref.eval()
    x = h.nchw(24, (2, 7, 9), seed=5).numpy()
    with torch.no_grad():
        expected = ref(torch.from_numpy(x))[0].numpy()
    results = h.assert_backends_agree(m, {"x": x}, label="encnet-vs-official")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)


def test_default_init_is_the_codes():
    """Codewords U(±1/√(K·D)), smoothing factors U(−1, 0), as Encoding.reset_params."""
    state = h.compile_spec("encnet", {"C": 24, "width": 12, "codes": 8}).state_dict()
    bound = 1 / math.sqrt(8 * 12)
    assert state["codewords"].abs().max() <= bound
    assert state["codewords"].abs().max() > 0.9 * bound
    assert bool((state["scale"] <= 0).all()) and bool((state["scale"] >= -1).all())


def test_res_must_be_0_or_1():
    from attncc.diagnostics import AttnccError

    with pytest.raises(AttnccError, match="res_is_0_or_1"):
        h.compile_spec("encnet", {"C": 24, "width": 12, "codes": 8, "res": 2})
