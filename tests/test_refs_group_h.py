"""Compiled HamNet (Hamburger, NMF) and GLTR against modules written from the authors' code.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True through its `from_compiled` (HamNet: the bases buffer's leading 1; GLTR: the
pyramid's Conv2d kernels), so names and shapes must line up before any number is compared.
"""

from __future__ import annotations

from collections.abc import Callable

import _harness as h
import pytest
import torch
from paper_refs import gltr, hamnet

# spec -> (reference constructor, compiled state_dict -> reference state_dict)
REFS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable]] = {
    "hamnet": (lambda hp: hamnet.HamburgerReference(hp["C"], r=hp["r"], steps=hp["steps"]),
               hamnet.from_compiled),
    "gltr": (lambda hp: gltr.GLTRReference(hp["C"]), gltr.from_compiled),
}
# the hyperparameters of tests/test_specs.py SETTINGS
CASES = [
    pytest.param("hamnet", {"C": 24, "r": 6, "steps": 3}, id="hamnet-C24-r6-s3"),
    pytest.param("hamnet", {"C": 40, "r": 8, "steps": 2}, id="hamnet-C40-r8-s2"),
    pytest.param("gltr", {"C": 24}, id="gltr-C24"),
    pytest.param("gltr", {"C": 40}, id="gltr-C40"),
]
# (N, H, W) for images, (N, T) for frame sequences: distinct sizes, H != W, T under and over
# the pyramid's widest reach (dilation 3: 7 frames)
SHAPES = [
    pytest.param({"N": 3, "H": 7, "W": 9, "T": 5}, id="n3_h7_w9_t5"),
    pytest.param({"N": 2, "H": 11, "W": 5, "T": 13}, id="n2_h11_w5_t13"),
]
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the paper reference holding the same weights."""
    m = h.randomize_(h.compile_spec(spec, hyper), seed)
    make, convert = REFS[spec]
    ref = make(hyper)
    ref.load_state_dict(convert(m.state_dict()), strict=True)
    return m, ref


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_paper_reference_in_eval_mode(spec, hyper, sizes):
    m, ref = _pair(spec, hyper)
    m.eval()
    ref.eval()
    x = h.torch_input(m, sizes, seed=1)
    with torch.no_grad():
        y = m(x)
        want = ref(x)
    assert y.shape == want.shape
    torch.testing.assert_close(y, want, **TOL)


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_training_step_matches(spec, hyper):
    """Batch statistics in the forward pass, gradients, then the same running buffers.

    In float64, as the other groups: BN over batch statistics magnifies summation-order noise.
    """
    m, ref = _pair(spec, hyper, seed=2)
    m.train().double()
    ref.train().double()
    sizes = {"N": 3, "H": 7, "W": 9, "T": 6}
    x = h.torch_input(m, sizes, seed=3).double()
    y, want = m(x), ref(x)
    torch.testing.assert_close(y, want, **TOL)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=y.dtype)
    (y * w).sum().backward()
    (want * w).sum().backward()
    _, convert = REFS[spec]
    grads = convert({k: p.grad for k, p in m.named_parameters() if p.grad is not None})
    for k, p in ref.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-5, atol=1e-6, msg=k)
    torch.testing.assert_close(convert(m.state_dict()), ref.state_dict(), rtol=1e-5, atol=1e-6)


def test_hamnet_bases_get_no_gradient_as_in_the_code():
    """The NMF iterations run under no_grad in the code: only the breads and the BN train;
    the one-step gradient reaches the lower bread through the last codes update."""
    m, ref = _pair("hamnet", {"C": 24, "r": 6, "steps": 3}, seed=6)
    x = torch.randn(2, 24, 5, 7)
    m.train()(x).sum().backward()
    ref.train()(x).sum().backward()
    got = {k for k, p in m.named_parameters() if p.grad is not None and torch.any(p.grad != 0)}
    want = {k for k, p in ref.named_parameters() if p.grad is not None}
    assert got == want == {"lower_bread.0.weight", "lower_bread.0.bias",
                           "upper_bread.0.weight", "upper_bread.1.weight",
                           "upper_bread.1.bias"}
    assert "ham.bases" in dict(m.named_parameters())


def test_hamnet_codes_are_non_negative():
    m = h.randomize_(h.compile_spec("hamnet", {"C": 24, "r": 6, "steps": 3}), 7).eval()
    with torch.no_grad():
        _, maps = m(torch.randn(2, 24, 5, 7), return_attention=True)
    code = maps["ham.code"] if isinstance(maps, dict) else maps[0]
    assert code.shape == (2, 5, 7, 6) and torch.all(code >= 0)
