"""Compiled STA against tests/paper_refs/sta.py (written from eqs 151-156), and its selection.

STA has no parameters: the comparison is of the output [N, 2C, H, W], the spatial maps g and
the 2-D score matrix S, with H fixed (compile-time divisibility check) and left to run time.
The argmax frame is checked to break ties towards the first frame in all three backends, and
the gradient to reach the input through `take` (the selected frame) and the weighted sum.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.sta import STAReference

import attncc
from attncc.diagnostics import AttnccError

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [  # tests/test_specs.py SETTINGS (H fixed), the paper's K = 4 on 16-row maps, H free
    pytest.param({"C": 24, "H": 14, "K": 2}, 14, id="C24-H14-K2"),
    pytest.param({"C": 40, "H": 22, "K": 11}, 22, id="C40-H22-K11"),
    pytest.param({"C": 32, "H": 16}, 16, id="C32-H16-K4"),
    pytest.param({"C": 24, "K": 3}, 15, id="C24-K3-H15-at-run-time"),
]
SHAPES = [pytest.param((3, 6, 9), id="n3_t6_w9"), pytest.param((1, 2, 5), id="n1_t2_w5")]


def _input(hp: dict, hh: int, shape, seed: int) -> torch.Tensor:
    n, t, ww = shape
    return torch.randn(n, t, hp["C"], hh, ww, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("hp", "hh"), CASES)
def test_matches_reference(hp, hh, shape):
    m = h.compile_spec("sta", hp)
    ref = STAReference(hp.get("K", 4))
    x = _input(hp, hh, shape, seed=1)
    with torch.no_grad():
        y, att = m(x, return_attention=True)
        want_y, want_g, want_s = ref(x)
    torch.testing.assert_close(y, want_y, **TOL)
    torch.testing.assert_close(att["g"], want_g, **TOL)
    torch.testing.assert_close(att["score"], want_s, **TOL)


@pytest.mark.parametrize(("hp", "hh"), CASES[:3])
def test_backward_matches_reference(hp, hh):
    m = h.compile_spec("sta", hp).double()
    x = _input(hp, hh, (2, 5, 3), seed=2).double().requires_grad_()
    g = torch.randn(2, 2 * hp["C"], hh, 3, generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    got = torch.autograd.grad((m(x) * g).sum(), x)[0]
    want = torch.autograd.grad((STAReference(hp.get("K", 4))(x)[0] * g).sum(), x)[0]
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    assert torch.all(got != 0)  # every element reaches the output (weighted sum over frames)


# not onnxruntime: its reductions may round two copies of a frame an ulp apart, so the scores
# need not tie there; ArgMax's own tie rule in ORT is checked on exact ties in test_select.py
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_argmax_ties_go_to_the_first_frame(backend):
    """Frame 1 is frame 0 negated: equal energies, so equal scores in every region (exactly,
    as x² = (-x)²), but other features. Y¹ takes frame 0."""
    m = h.compile_spec("sta", {"C": 24, "H": 14, "K": 2})
    x = np.random.default_rng(4).standard_normal((2, 2, 24, 14, 9), dtype=np.float32)
    x[:, 1] = -x[:, 0]
    out = h.BACKENDS[backend](m, {"x": x})
    np.testing.assert_array_equal(out["attention.score"], np.full((2, 2, 2), 0.5, np.float32))
    np.testing.assert_array_equal(out["y"][:, :24], x[:, 0])


def test_regions_must_divide_a_fixed_height():
    with pytest.raises(AttnccError, match="cannot cut `H` = 14 into pieces"):
        attncc.compile("specs/sta.attn", C=24, H=14, K=4)


def test_height_stays_dynamic_in_onnx():
    m = h.compile_spec("sta", {"C": 24, "K": 2})
    model = h.onnx_model(m)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", "T", 24, "H", "W"]
    for hh in (6, 10):
        x = {"x": np.random.default_rng(hh).standard_normal((2, 3, 24, hh, 5), np.float32)}
        np.testing.assert_allclose(h.run_ort(m, x, model)["y"], h.run_torch(m, x)["y"],
                                   **{"rtol": 1e-5, "atol": 1e-6})
