"""Compiled GC, non-local, DANet and SK blocks against modules written from the authors' code.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True, so parameter names and shapes must line up before any number is compared. Where
the compiled block holds a tensor in another shape than the code (a dense [P, C] weight for
a 1x1 conv on a 1x1 map, a rank-0 gamma for torch.zeros(1)), the reference module's
`from_compiled` reshapes it; the names are the compiled ones.
"""

from __future__ import annotations

from collections.abc import Callable

import _harness as h
import pytest
import torch
from paper_refs import danet, gc, nonlocal_block, sk


def _same(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state)


# spec -> (reference constructor, compiled state_dict -> reference state_dict)
REFS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable]] = {
    "gc": (lambda hp: gc.GCReference(hp["C"], r=hp["r"]), gc.from_compiled),
    "nonlocal": (lambda hp: nonlocal_block.NonLocalReference(hp["C"], r=hp["r"]), _same),
    "danet": (lambda hp: danet.DANetReference(hp["C"], r=hp["r"]), danet.from_compiled),
    "sk": (lambda hp: sk.SKReference(hp["C"], groups=hp["groups"], r=hp["r"], L=hp["L"]),
           sk.from_compiled),
}
# the hyperparameters of tests/test_specs.py SETTINGS
CASES = [
    pytest.param("gc", {"C": 24, "r": 4}, id="gc-C24-r4"),
    pytest.param("gc", {"C": 40, "r": 8}, id="gc-C40-r8"),
    pytest.param("nonlocal", {"C": 24, "r": 2}, id="nonlocal-C24-r2"),
    pytest.param("nonlocal", {"C": 40, "r": 5}, id="nonlocal-C40-r5"),
    pytest.param("danet", {"C": 24, "r": 4}, id="danet-C24-r4"),
    pytest.param("danet", {"C": 40, "r": 8}, id="danet-C40-r8"),
    pytest.param("sk", {"C": 24, "groups": 4, "r": 4, "L": 8}, id="sk-C24-g4-r4-L8"),
    pytest.param("sk", {"C": 40, "groups": 8, "r": 8, "L": 2}, id="sk-C40-g8-r8-L2"),
]
# (N, H, W): odd sizes, H != W, a map the non-local pool halves unevenly
SHAPES = [
    pytest.param((3, 7, 9), id="n3_h7_w9"),
    pytest.param((1, 11, 5), id="n1_h11_w5"),
]
TRAIN_CASES = [p for p in CASES if p.values[0] in ("nonlocal", "sk")]  # the blocks with BN
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the paper reference holding the same weights."""
    make, convert = REFS[spec]
    return h.paired(spec, hyper, make(hyper), convert, seed=seed)


def _input(hyper: dict, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    return h.nchw(hyper["C"], shape, seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_paper_reference_in_eval_mode(spec, hyper, shape):
    m, ref = _pair(spec, hyper)
    m.eval()
    ref.eval()
    x = _input(hyper, shape, seed=1)
    with torch.no_grad():
        y = m(x)
        torch.testing.assert_close(y, ref(x), **TOL)
        # the attention part matters: the output is not just the residual input
        assert not torch.allclose(y, x, atol=1e-3)


@pytest.mark.parametrize(("spec", "hyper"), TRAIN_CASES)
def test_training_step_matches(spec, hyper):
    """Batch statistics in the forward pass, then the same running buffers.

    In float64: normalising by batch statistics of small pre-BN activations magnifies
    float32 summation-order differences (einsum vs bmm) past atol=1e-5 on single elements.
    """
    m, ref = _pair(spec, hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = _input(hyper, (3, 7, 9), seed=3).double()
    torch.testing.assert_close(m(x), ref(x), **TOL)
    _, convert = REFS[spec]
    torch.testing.assert_close(convert(m.state_dict()), ref.state_dict(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "hyper"), [c for c in CASES if c.values[0] in
                                              ("nonlocal", "danet", "gc")])
def test_default_init_is_the_identity(spec, hyper):
    """Zero BN gamma (non-local), zero gammas (DANet, x + x), zero last transform (GC)."""
    m = h.compile_spec(spec, hyper).eval()
    x = _input(hyper, (2, 7, 9), seed=4)
    with torch.no_grad():
        want = 2 * x if spec == "danet" else x
        torch.testing.assert_close(m(x), want, **TOL)
