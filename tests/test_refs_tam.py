"""Compiled TAM (Liu et al., ICCV 2021) against the official module (liu-zhy/
temporal-adaptive-module, ops/temporal_module.py), written out in tests/paper_refs/tam.py. The
official module takes TSN's [N·T, C, H, W]; the compiled block [N, C, T, H, W]. Parameter
names are the same, so the reference loads the compiled state_dict as it is (strict=True).
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.tam import TAMReference

TOL = {"rtol": 1e-4, "atol": 1e-5}
# the official setting (K = 3 for both convs, alpha 2, beta 4), and a wider one with the
# local conv's kernel decoupled from the adaptive kernel's (as mmaction2 allows)
CASES = [
    pytest.param({"C": 24, "T": 8}, id="C24-T8-official"),
    pytest.param({"C": 40, "T": 6, "k": 5, "alpha": 3, "beta": 5, "local_k": 3},
                 id="C40-T6-k5-a3-b5-l3"),
]
SHAPES = [pytest.param((2, 7, 9), id="n2_h7_w9"), pytest.param((1, 11, 13), id="n1_h11_w13")]


def _pair(hyper: dict, seed: int = 0):
    ref = TAMReference(hyper["C"], hyper["T"], kernel_size=hyper.get("k", 3),
                       alpha=hyper.get("alpha", 2), beta=hyper.get("beta", 4),
                       local_kernel_size=hyper.get("local_k", 3))
    return h.paired("tam", hyper, ref, seed=seed)


def _input(hyper: dict, shape, seed: int) -> torch.Tensor:
    n, hh, ww = shape
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, hyper["C"], hyper["T"], hh, ww, generator=gen)


def _official(x: torch.Tensor) -> torch.Tensor:
    """[N, C, T, H, W] -> the code's [N·T, C, H, W]."""
    n, c, t, hh, ww = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(n * t, c, hh, ww)


def _back(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n, c, t, hh, ww = like.shape
    return y.view(n, t, c, hh, ww).permute(0, 2, 1, 3, 4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    m.eval()
    ref.eval()
    x = _input(hyper, shape, seed=1)
    with torch.no_grad():
        y, att = m(x, return_attention=True)
        y_ref, local, kernel = ref(_official(x))
    torch.testing.assert_close(y, _back(y_ref, x), **TOL)
    torch.testing.assert_close(att["s"], local, **TOL)
    torch.testing.assert_close(att["theta"], kernel, **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """BN's batch statistics (over N·C in G, over N·T in L), its running buffers, a backward."""
    m, ref = _pair(hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = _input(hyper, (3, 7, 9), seed=3).double()
    y_m, y_ref = m(x), _back(ref(_official(x))[0], x)
    torch.testing.assert_close(y_m, y_ref, **TOL)
    torch.testing.assert_close(m.state_dict(), ref.state_dict(), rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_m)
    params_m, params_ref = dict(m.named_parameters()), dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)


def test_every_backend_matches_reference():
    hyper = {"C": 24, "T": 8}
    m, ref = _pair(hyper, seed=4)
    ref.eval()
    x = _input(hyper, (2, 7, 9), seed=5)
    with torch.no_grad():
        expected = _back(ref(_official(x))[0], x).numpy()
    results = h.assert_backends_agree(m, {"x": x.numpy()}, label="tam-vs-official")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)


def test_t_is_fixed_at_compile_time():
    m = h.compile_spec("tam", {"C": 24, "T": 8})
    assert m.ir.dims["T"] == 8
    assert m.state_dict()["G.0.weight"].shape == (16, 8)
