"""Compiled GE-θ and GE-θ⁺ (specs/genet.attn, blocks GETheta and GEThetaPlus) against a module
written from timm's GatherExcite (extra_params=True, use_mlp False / True).

The reference loads the randomised compiled state_dict with strict=True through
`from_compiled` (conv1, norm1, ... -> gather.conv1, gather.norm1, ...; fc1, fc2 -> mlp.fc1,
mlp.fc2), so a drift in names or shapes fails before any number is compared. GE-θ⁻ (the entry
block) is compared in tests/test_refs_group_c.py.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.genet import GatherExciteParamReference, from_compiled

import attncc
from attncc.diagnostics import AttnccError

TOL = {"rtol": 1e-4, "atol": 1e-5}
BLOCKS = {"GETheta": False, "GEThetaPlus": True}  # block -> use_mlp
CASES = [
    pytest.param({"block": "GETheta", "C": 24, "e": 2}, id="theta-C24-e2"),
    pytest.param({"block": "GETheta", "C": 40, "e": 4}, id="theta-C40-e4"),
    pytest.param({"block": "GETheta", "C": 20, "e": 8}, id="theta-C20-e8"),
    pytest.param({"block": "GEThetaPlus", "C": 24, "e": 2}, id="plus-C24-e2-M2"),
    # C / 16 = 2.5: timm rounds the width half up, to 3
    pytest.param({"block": "GEThetaPlus", "C": 40, "e": 4}, id="plus-C40-e4-M3"),
    pytest.param({"block": "GEThetaPlus", "C": 56, "e": 8, "r": 4}, id="plus-C56-e8-r4-M14"),
]
# (N, H, W): odd and even sizes, so the stride-2 stages round up (⌈7/2⌉ = 4, ⌈4/2⌉ = 2)
SHAPES = [pytest.param((3, 7, 9), id="n3_h7_w9"), pytest.param((1, 11, 16), id="n1_h11_w16")]


def _reference(hyper: dict) -> GatherExciteParamReference:
    return GatherExciteParamReference(hyper["C"], extent=hyper["e"],
                                      use_mlp=BLOCKS[hyper["block"]],
                                      rd_ratio=1.0 / hyper.get("r", 16))


def _pair(hyper: dict, seed: int = 0):
    return h.paired("genet", hyper, _reference(hyper), from_compiled, seed=seed)


def _input(hyper: dict, shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape[0], hyper["C"], *shape[1:], generator=gen)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper, seed=1)
    m.eval()
    ref.eval()
    x = _input(hyper, shape, seed=2)
    with torch.no_grad():
        y, att = m(x, return_attention=True)
        torch.testing.assert_close(y, ref(x), **TOL)
        torch.testing.assert_close(att["s"], ref.gate_map(x), **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches(hyper):
    """BN's batch statistics, its running buffers, and one backward (float64)."""
    m, ref = _pair(hyper, seed=3)
    m.train().double()
    ref.train().double()
    x = _input(hyper, (4, 13, 10), seed=4).double()
    y_m, y_ref = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, **TOL)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(),
                               rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_m)
    params_m = from_compiled(dict(m.named_parameters()))  # by timm's name
    params_ref = dict(ref.named_parameters())
    assert set(params_m) == set(params_ref)
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, [params_ref[k] for k in params_m], g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize(("hyper", "shape"), [
    pytest.param({"block": "GETheta", "C": 24, "e": 8}, (2, 3, 2), id="theta-e8-to-1x1"),
    pytest.param({"block": "GEThetaPlus", "C": 24, "e": 4}, (2, 1, 7), id="plus-e4-h1"),
    pytest.param({"block": "GEThetaPlus", "C": 40, "e": 8}, (1, 30, 5), id="plus-e8-h30"),
])
def test_edge_sizes_in_every_backend(hyper, shape):
    """NumPy, PyTorch and onnxruntime against the reference where the gather reaches 1 × 1
    (timm skips the interpolation there) or a map of height 1."""
    m, ref = _pair(hyper, seed=5)
    m.eval()
    ref.eval()
    x = _input(hyper, shape, seed=6).numpy()
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    results = h.assert_backends_agree(m, {"x": x}, label=f"genet-{hyper}-{shape}")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=1e-4, atol=1e-5, err_msg=backend)


@pytest.mark.parametrize(("e", "stages"), [(2, 1), (4, 2), (8, 3)])
def test_one_gather_stage_per_halving(e, stages):
    m = attncc.compile(h.SPECS_DIR / "genet.attn", block="GETheta", C=24, e=e)
    convs = sorted(k for k in m.state_dict() if k.startswith("conv"))
    assert convs == [f"conv{i}.weight" for i in range(1, stages + 1)]
    assert m.state_dict()["conv1.weight"].shape == (24, 1, 3, 3)  # depthwise, no bias


@pytest.mark.parametrize(("C", "r", "width"), [(24, 16, 2), (40, 16, 3), (8, 16, 1),
                                               (56, 4, 14), (60, 8, 8)])
def test_mlp_width_is_timms(C, r, width):
    m = attncc.compile(h.SPECS_DIR / "genet.attn", block="GEThetaPlus", C=C, e=2, r=r)
    assert m.state_dict()["fc1.weight"].shape == (width, C, 1, 1)
    assert _reference({"block": "GEThetaPlus", "C": C, "e": 2, "r": r}).mlp.fc1.out_channels \
        == width


def test_entry_block_is_still_ge_theta_minus():
    m = attncc.compile(h.SPECS_DIR / "genet.attn", C=24)
    assert m.ir.block == "GENet" and not m.state_dict()


@pytest.mark.parametrize("block", list(BLOCKS))
@pytest.mark.parametrize(("setting", "message"), [
    ({"e": 6}, "e_is_2_4_or_8"),
    ({"e": 16}, "e_is_2_4_or_8"),
    ({"e": 1}, "e_is_2_4_or_8"),
])
def test_extent_out_of_range_is_a_diagnostic(block, setting, message):
    with pytest.raises(AttnccError, match=message):
        attncc.compile(h.SPECS_DIR / "genet.attn", block=block, C=24, **setting)


def test_reduction_below_one_is_a_diagnostic():
    with pytest.raises(AttnccError, match="r_at_least_1"):
        attncc.compile(h.SPECS_DIR / "genet.attn", block="GEThetaPlus", C=24, r=0)
