"""Compiled OCR, GloRe and GALA blocks against modules written from the authors' code.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True (through `from_compiled` where the code stores a tensor in another shape or under
another name), so parameter names and shapes must line up before any number is compared.
OCR takes two inputs: the features and the auxiliary head's soft object regions (logits).
"""

from __future__ import annotations

from collections.abc import Callable

import _harness as h
import pytest
import torch
from paper_refs import gala, glore, ocr


def _same(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state)


# spec -> (reference constructor, compiled state_dict -> reference state_dict)
REFS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable]] = {
    "ocr": (lambda hp: ocr.OCRReference(hp["C"], key=hp["key"]), ocr.from_compiled),
    "glore": (lambda hp: glore.GloReReference(hp["C"], nodes=hp["nodes"], state=hp["state"]),
              glore.from_compiled),
    "gala": (lambda hp: gala.GALAReference(hp["C"], r=hp["r"]), _same),
}
# the hyperparameters of tests/test_specs.py SETTINGS
CASES = [
    pytest.param("ocr", {"C": 24, "K": 6, "key": 8}, id="ocr-C24-K6-key8"),
    pytest.param("ocr", {"C": 40, "K": 5, "key": 12}, id="ocr-C40-K5-key12"),
    pytest.param("glore", {"C": 24, "nodes": 6, "state": 12}, id="glore-C24-n6-s12"),
    pytest.param("glore", {"C": 40, "nodes": 8, "state": 16}, id="glore-C40-n8-s16"),
    pytest.param("gala", {"C": 24, "r": 4}, id="gala-C24-r4"),
    pytest.param("gala", {"C": 40, "r": 8}, id="gala-C40-r8"),
]
# (N, H, W): odd sizes, H != W, sizes distinct from every C, K, key, nodes, state above
SHAPES = [
    pytest.param((3, 7, 9), id="n3_h7_w9"),
    pytest.param((2, 11, 13), id="n2_h11_w13"),
]
TRAIN_CASES = [p for p in CASES if p.values[0] in ("ocr", "glore")]  # the blocks with BN
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the paper reference holding the same weights."""
    make, convert = REFS[spec]
    return h.paired(spec, hyper, make(hyper), convert, seed=seed)


def _inputs(spec: str, hyper: dict, shape: tuple[int, int, int], seed: int) -> list[torch.Tensor]:
    n, hh, ww = shape
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(n, hyper["C"], hh, ww, generator=g)]
    if spec == "ocr":                                   # soft object regions: aux logits
        xs.append(3 * torch.randn(n, hyper["K"], hh, ww, generator=g))
    return xs


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_paper_reference_in_eval_mode(spec, hyper, shape):
    m, ref = _pair(spec, hyper)
    m.eval()
    ref.eval()
    xs = _inputs(spec, hyper, shape, seed=1)
    with torch.no_grad():
        y = m(*xs)
        assert y.shape == xs[0].shape
        torch.testing.assert_close(y, ref(*xs), **TOL)
        # the attention part matters: the output is not just (a multiple of) the input
        assert not torch.allclose(y, xs[0], atol=1e-3)


@pytest.mark.parametrize(("spec", "hyper"), TRAIN_CASES)
def test_training_step_matches(spec, hyper):
    """Batch statistics in the forward pass, then the same running buffers (float64).

    OCR's reference keeps the code's Dropout2d; it is set to p = 0 here, since the compiled
    block (an eval-mode graph) has none.
    """
    m, ref = _pair(spec, hyper, seed=2)
    for mod in ref.modules():
        if isinstance(mod, torch.nn.Dropout2d):
            mod.p = 0.0
    m.train().double()
    ref.train().double()
    xs = [x.double() for x in _inputs(spec, hyper, (3, 7, 9), seed=3)]
    torch.testing.assert_close(m(*xs), ref(*xs), **TOL)
    _, convert = REFS[spec]
    torch.testing.assert_close(convert(m.state_dict()), ref.state_dict(), rtol=1e-5, atol=1e-6)


def test_ocr_context_depends_on_the_regions():
    """The second input is used: other region logits give another output.

    (Not a permutation of the K regions: the block is invariant to one, softmax over K then a
    sum over K.)
    """
    hyper = {"C": 24, "K": 6, "key": 8}
    m, _ = _pair("ocr", hyper)
    m.eval()
    x, regions = _inputs("ocr", hyper, (2, 7, 9), seed=4)
    other = _inputs("ocr", hyper, (2, 7, 9), seed=5)[1]
    with torch.no_grad():
        y = m(x, regions)
        torch.testing.assert_close(m(x, regions.flip(1)), y, **TOL)   # regions permuted
        assert not torch.allclose(m(x, other), y, atol=1e-4)


def test_ocr_reference_state_dict_has_the_code_names():
    """from_compiled yields exactly the HRNet-OCR key set (strict load would fail otherwise)."""
    ref = ocr.OCRReference(24, key=8)
    names = set(ref.state_dict())
    assert "ocr_distri_head.object_context_block.f_pixel.3.0.running_var" in names
    assert "ocr_distri_head.conv_bn_dropout.1.0.weight" in names


def test_gala_default_init_is_tanh_of_the_sum():
    """a = ones, m = zeros: s = tanh(s_g + s_l) at initialisation."""
    hyper = {"C": 24, "r": 4}
    m = h.compile_spec("gala", hyper).eval()
    ref = gala.GALAReference(24, r=4)
    ref.load_state_dict(m.state_dict(), strict=True)
    assert torch.equal(ref.a, torch.ones(24)) and torch.equal(ref.m, torch.zeros(24))
    x = _inputs("gala", hyper, (2, 7, 9), seed=5)[0]
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), **TOL)
