"""Compiled dynamic convolution (Chen et al., CVPR 2020) against the most-used port's
Dynamic_conv2d (kaijieshi7/Dynamic-convolution-Pytorch), written out in
tests/paper_refs/dynconv.py; the reference loads the compiled state_dict with strict=True
through `from_compiled`.
"""

from __future__ import annotations

import math

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.dynconv import DynamicConv2dReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
# (hyperparameters, the reference's hidden width): the paper's C // 4, and the port's
# int(C * 0.25) + 1 at a high temperature (the start of the paper's annealing)
CASES = [
    pytest.param({"C": 24, "out": 20, "kernels": 4, "k": 3, "tau": 1.0}, 6,
                 id="paper-C24-O20-K4-k3"),
    pytest.param({"C": 12, "out": 16, "kernels": 5, "k": 5, "extra": 1, "tau": 30.0}, None,
                 id="port-C12-O16-K5-k5-t30"),
]
SHAPES = [pytest.param((2, 7, 11), id="n2_h7_w11"), pytest.param((3, 8, 13), id="n3_h8_w13")]


def _pair(hyper: dict, hidden: int | None, seed: int = 0):
    ref = DynamicConv2dReference(hyper["C"], hyper["out"], hyper["k"], ratio=0.25,
                                 K=hyper["kernels"], temperature=hyper["tau"], hidden=hidden)
    return h.paired("dynconv", hyper, ref, from_compiled, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("hyper", "hidden"), CASES)
def test_matches_reference_in_eval_mode(hyper, hidden, shape):
    m, ref = _pair(hyper, hidden)
    x = h.nchw(hyper["C"], shape, seed=1)
    (y, att), (y_ref, s) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(att["s"], s, **TOL)


@pytest.mark.parametrize(("hyper", "hidden"), CASES)
def test_backward_matches(hyper, hidden):
    m, ref = _pair(hyper, hidden, seed=2)
    m.double()
    ref.double()
    x = h.nchw(hyper["C"], (3, 7, 11), seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    names = [k for k, _ in m.named_parameters()]
    grads_m = from_compiled(dict(zip(names, torch.autograd.grad(y_m, list(m.parameters()), g),
                                     strict=True)))
    params_ref = dict(ref.named_parameters())
    assert set(grads_m) == set(params_ref)
    grads_ref = torch.autograd.grad(y_ref, list(params_ref.values()), g)
    for name, b in zip(params_ref, grads_ref, strict=True):
        torch.testing.assert_close(grads_m[name], b, rtol=1e-9, atol=1e-10, msg=name)


def test_every_backend_matches_reference():
    hyper, hidden = {"C": 12, "out": 16, "kernels": 5, "k": 5, "extra": 1, "tau": 30.0}, None
    m, ref = _pair(hyper, hidden, seed=4)
    ref.eval()
    x = h.nchw(12, (2, 7, 11), seed=5).numpy()
    with torch.no_grad():
        expected = ref(torch.from_numpy(x))[0].numpy()
    results = h.assert_backends_agree(m, {"x": x}, label="dynconv-vs-port")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)


def test_default_init_is_the_ports():
    """Kernels U(±√(6/(C·k·k))) (kaiming_uniform_, a = 0), biases zero."""
    state = h.compile_spec("dynconv", {"C": 24, "out": 20, "kernels": 4, "k": 3}).state_dict()
    bound = math.sqrt(6 / (24 * 9))
    assert state["weight"].abs().max() <= bound
    assert state["weight"].abs().max() > 0.95 * bound
    assert torch.count_nonzero(state["bias"]) == 0


def test_temperature_flattens_the_attention():
    """A high τ (training's start) gives near-uniform kernel weights, τ = 1 sharper ones."""
    x = h.nchw(24, (3, 7, 11), seed=6)
    spread = {}
    for tau in (1.0, 30.0):
        m = h.randomize_(h.compile_spec("dynconv", {"C": 24, "out": 20, "k": 3, "tau": tau}), 7)
        with torch.no_grad():
            s = m.eval()(x, return_attention=True)[1]["s"]
        torch.testing.assert_close(s.sum(-1), torch.ones(3))
        spread[tau] = float((s - 0.25).abs().max())
    assert spread[30.0] < spread[1.0] / 10
