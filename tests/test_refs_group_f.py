"""Compiled soft attention, SCA-CNN and DNL blocks against modules written from code/papers.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True (softatt through `from_compiled`, which reshapes full_att to nn.Linear(att, 1)'s
layout), so names and shapes line up before any number is compared. Soft attention and
SCA-CNN take the decoder's hidden state as a second input (class B: state as input).
"""

from __future__ import annotations

from collections.abc import Callable

import _harness as h
import pytest
import torch
from paper_refs import dnl, scacnn, softatt


def _same(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state)


# spec -> (reference constructor, compiled state_dict -> reference state_dict)
REFS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable]] = {
    "softatt": (lambda hp: softatt.SoftAttentionReference(hp["D"], hp["E"], hp["att"]),
                softatt.from_compiled),
    "scacnn": (lambda hp: scacnn.SCACNNReference(hp["C"], hp["E"], k=hp["k"]), _same),
    "dnl": (lambda hp: dnl.DNLReference(hp["C"], r=hp["r"]), _same),
}
# the hyperparameters of tests/test_specs.py SETTINGS
CASES = [
    pytest.param("softatt", {"D": 24, "E": 16, "att": 12}, id="softatt-D24-E16-a12"),
    pytest.param("softatt", {"D": 40, "E": 20, "att": 8}, id="softatt-D40-E20-a8"),
    pytest.param("scacnn", {"C": 24, "E": 16, "k": 12}, id="scacnn-C24-E16-k12"),
    pytest.param("scacnn", {"C": 40, "E": 20, "k": 8}, id="scacnn-C40-E20-k8"),
    pytest.param("dnl", {"C": 24, "r": 2}, id="dnl-C24-r2"),
    pytest.param("dnl", {"C": 40, "r": 5}, id="dnl-C40-r5"),
]
# (N, H, W, L): odd sizes, H != W; L (softatt's positions) distinct from everything else
SHAPES = [
    pytest.param((3, 7, 9, 5), id="n3_h7_w9_l5"),
    pytest.param((1, 11, 6, 13), id="n1_h11_w6_l13"),
]
TRAIN_CASES = [p for p in CASES if p.values[0] == "dnl"]  # the block with BN
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the reference holding the same weights."""
    make, convert = REFS[spec]
    return h.paired(spec, hyper, make(hyper), convert, seed=seed)


def _inputs(spec: str, hyper: dict, shape: tuple[int, int, int, int],
            seed: int) -> list[torch.Tensor]:
    n, hh, ww, ll = shape
    g = torch.Generator().manual_seed(seed)
    if spec == "softatt":
        return [torch.randn(n, ll, hyper["D"], generator=g),
                torch.randn(n, hyper["E"], generator=g)]
    x = torch.randn(n, hyper["C"], hh, ww, generator=g)
    if spec == "scacnn":
        return [x, torch.randn(n, hyper["E"], generator=g)]
    return [x]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_reference_in_eval_mode(spec, hyper, shape):
    m, ref = _pair(spec, hyper)
    xs = _inputs(spec, hyper, shape, seed=1)
    (y, att), want = h.eval_both(m, ref, *xs)
    if spec == "softatt":
        z, alpha = want
        torch.testing.assert_close(y, z, **TOL)
        torch.testing.assert_close(att["alpha"], alpha, **TOL)
    elif spec == "scacnn":
        yy, beta, alpha = want
        torch.testing.assert_close(y, yy, **TOL)
        torch.testing.assert_close(att["beta"], beta, **TOL)
        torch.testing.assert_close(att["alpha"], alpha, **TOL)
    else:
        torch.testing.assert_close(y, want, **TOL)
        # the attention part matters: the output is not just the residual input
        assert not torch.allclose(y, xs[0], atol=1e-3)


@pytest.mark.parametrize(("spec", "hyper"), TRAIN_CASES)
def test_training_step_matches(spec, hyper):
    """Batch statistics in the forward pass, then the same running buffers (float64)."""
    m, ref = _pair(spec, hyper, seed=2)
    m.train().double()
    ref.train().double()
    xs = [x.double() for x in _inputs(spec, hyper, (3, 7, 9, 5), seed=3)]
    torch.testing.assert_close(m(*xs), ref(*xs), **TOL)
    _, convert = REFS[spec]
    torch.testing.assert_close(convert(m.state_dict()), ref.state_dict(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "hyper"), TRAIN_CASES)
def test_default_init_is_the_identity(spec, hyper):
    """BN weight and bias start at 0: the DNL block starts as the identity."""
    m = h.compile_spec(spec, hyper).eval()
    x = _inputs(spec, hyper, (2, 7, 9, 5), seed=4)[0]
    with torch.no_grad():
        torch.testing.assert_close(m(x), x, **TOL)


@pytest.mark.parametrize(("spec", "hyper"), [c for c in CASES if c.values[0] == "dnl"])
def test_dnl_whitening_and_unary_term_matter(spec, hyper):
    """The unary map sums to 1 over positions; whitened affinities ignore a shift of θ's bias."""
    m, _ = _pair(spec, hyper)
    m.eval()
    x = _inputs(spec, hyper, (2, 7, 9, 5), seed=5)[0]
    with torch.no_grad():
        _, att = m(x, return_attention=True)
        torch.testing.assert_close(att["unary"].sum(dim=(1, 2)), torch.ones(2), **TOL)
        m.theta.bias.add_(3.0)
        _, att2 = m(x, return_attention=True)
        torch.testing.assert_close(att2["pairwise"], att["pairwise"], **TOL)
