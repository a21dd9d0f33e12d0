"""Compiled EANet, A²-Net, highway and strip pooling blocks against independent references.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True, so parameter names and shapes must line up before any number is compared. EANet
and SPNet come from the authors' code (their Conv1d / 3×1 / 1×3 kernels hold the compiled
dense and 1-D conv weights after `from_compiled` adds unit dims); A²-Net and the highway
layer, whose authors released no PyTorch code, from the papers' equations.
"""

from __future__ import annotations

from collections.abc import Callable

import _harness as h
import pytest
import torch
from paper_refs import a2net, eanet, highway, spnet


def _same(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state)


# spec -> (reference constructor, compiled state_dict -> reference state_dict)
REFS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable]] = {
    "eanet": (lambda hp: eanet.EANetReference(hp["C"], m=hp["m"]), eanet.from_compiled),
    "a2net": (lambda hp: a2net.A2NetReference(hp["C"], r=hp["r"]), _same),
    "highway": (lambda hp: highway.HighwayReference(hp["D"], hp.get("bias_init", -1.0)), _same),
    "spnet": (lambda hp: spnet.SPNetReference(hp["C"]), spnet.from_compiled),
}
# the hyperparameters of tests/test_specs.py SETTINGS
CASES = [
    pytest.param("eanet", {"C": 24, "m": 8}, id="eanet-C24-m8"),
    pytest.param("eanet", {"C": 40, "m": 12}, id="eanet-C40-m12"),
    pytest.param("a2net", {"C": 24, "r": 4}, id="a2net-C24-r4"),
    pytest.param("a2net", {"C": 40, "r": 8}, id="a2net-C40-r8"),
    pytest.param("highway", {"D": 24}, id="highway-D24"),
    pytest.param("highway", {"D": 40, "bias_init": -2.0}, id="highway-D40-b-2"),
    pytest.param("spnet", {"C": 24}, id="spnet-C24"),
    pytest.param("spnet", {"C": 40}, id="spnet-C40"),
]
# (N, H, W): odd sizes, H != W, no size shared with a channel width (highway uses N only)
SHAPES = [
    pytest.param((3, 7, 9), id="n3_h7_w9"),
    pytest.param((1, 11, 5), id="n1_h11_w5"),
]
TRAIN_CASES = [p for p in CASES if p.values[0] in ("eanet", "spnet")]  # the blocks with BN
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the reference holding the same weights."""
    make, convert = REFS[spec]
    return h.paired(spec, hyper, make(hyper), convert, seed=seed)


def _input(spec: str, hyper: dict, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    if spec == "highway":
        return torch.randn(shape[0], hyper["D"], generator=torch.Generator().manual_seed(seed))
    return h.nchw(hyper["C"], shape, seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_reference_in_eval_mode(spec, hyper, shape):
    m, ref = _pair(spec, hyper)
    m.eval()
    ref.eval()
    x = _input(spec, hyper, shape, seed=1)
    with torch.no_grad():
        y = m(x)
        torch.testing.assert_close(y, ref(x), **TOL)
        # the attention part matters: the output is not just the input
        assert not torch.allclose(y, x, atol=1e-3)


@pytest.mark.parametrize(("spec", "hyper"), TRAIN_CASES)
def test_training_step_matches(spec, hyper):
    """Batch statistics in the forward pass, then the same running buffers (float64)."""
    m, ref = _pair(spec, hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = _input(spec, hyper, (3, 7, 9), seed=3).double()
    torch.testing.assert_close(m(x), ref(x), **TOL)
    _, convert = REFS[spec]
    torch.testing.assert_close(convert(m.state_dict()), ref.state_dict(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "hyper"), [c for c in CASES if c.values[0] == "highway"])
def test_highway_gate_bias_starts_at_bias_init(spec, hyper):
    """b_T = bias_init (negative): the untrained layer mostly carries x through."""
    m = h.compile_spec(spec, hyper)
    want = hyper.get("bias_init", -1.0)
    torch.testing.assert_close(m.state_dict()["gate_bias"],
                               torch.full((hyper["D"],), want))


@pytest.mark.parametrize(("spec", "hyper"), [c for c in CASES if c.values[0] == "eanet"])
def test_eanet_double_normalisation(spec, hyper):
    """The attention map sums to 1 over the memory units at every position."""
    m = h.randomize_(h.compile_spec(spec, hyper), 5).eval()
    x = _input(spec, hyper, (2, 7, 9), seed=6)
    with torch.no_grad():
        _, maps = m(x, return_attention=True)
    a = maps["a"]                                   # [N, S, H, W]
    assert a.shape == (2, hyper["m"], 7, 9)
    torch.testing.assert_close(a.sum(1), torch.ones(2, 7, 9), **TOL)
