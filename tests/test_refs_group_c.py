"""Compiled SRM, GCT and GENet (GE-θ⁻) against modules written from the authors' code.

Each reference loads the randomised compiled block's state_dict with strict=True: SRM's keys
and shapes are the official ones as they are; GCT's official α, γ, β are [1, C, 1, 1] where
the spec's are [C], and `gct_to_official` is that whole mapping. GENet has no parameters.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.gct import GCTReference
from paper_refs.genet import GatherExciteReference
from paper_refs.srm import SRMReference

RTOL, ATOL = 1e-4, 1e-5


def gct_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.reshape(1, -1, 1, 1) for k, v in state.items()}


def srm_ref(hyper):
    return SRMReference(hyper["C"], eps=hyper.get("eps", 1e-5)), dict


def gct_ref(hyper):
    return GCTReference(hyper["C"], eps=hyper.get("eps", 1e-5)), gct_to_official


def genet_ref(hyper):
    return GatherExciteReference(extent=hyper.get("e", 2)), dict


BLOCKS = {"srm": srm_ref, "gct": gct_ref, "genet": genet_ref}
CASES = [
    pytest.param("srm", {"C": 24}, id="srm-C24"),
    pytest.param("srm", {"C": 40, "eps": 1e-3}, id="srm-C40-eps1e-3"),
    pytest.param("gct", {"C": 24}, id="gct-C24"),
    pytest.param("gct", {"C": 40, "eps": 1e-3}, id="gct-C40-eps1e-3"),
    pytest.param("genet", {"C": 24, "e": 2}, id="genet-C24-e2"),
    pytest.param("genet", {"C": 40, "e": 3}, id="genet-C40-e3"),
]
SHAPES = [pytest.param((3, 7, 9), id="n3_h7_w9"), pytest.param((1, 11, 5), id="n1_h11_w5")]


def _pair(stem: str, hyper: dict, seed: int):
    ref, to_official = BLOCKS[stem](hyper)
    return (*h.paired(stem, hyper, ref, to_official, seed=seed), to_official)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("stem", "hyper"), CASES)
def test_matches_the_authors_module(stem, hyper, shape):
    m, ref, _ = _pair(stem, hyper, seed=5)
    m.eval()
    ref.eval()
    x = torch.randn(shape[0], hyper["C"], *shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("hyper", [c.values[1] for c in CASES if c.values[0] == "srm"],
                         ids=["C24", "C40-eps1e-3"])
def test_srm_training_step_matches(hyper):
    """BN in training normalises the CFC output over the batch and updates its running stats."""
    m, ref, _ = _pair("srm", hyper, seed=6)
    m.train()
    ref.train()
    x = torch.randn(4, hyper["C"], 7, 9)
    y_m, y_ref = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(m.state_dict(), ref.state_dict(), rtol=1e-5, atol=1e-6)
    # one backward, in float64: BN's batch-statistics backward amplifies float32 rounding
    m, ref = m.double(), ref.double()
    x64 = x.detach().double()
    y_m, y_ref = m(x64), ref(x64)
    g = torch.randn_like(y_m)
    params_m, params_ref = dict(m.named_parameters()), dict(ref.named_parameters())
    assert list(params_m) == list(params_ref) == ["cfc", "bn.weight", "bn.bias"]
    grads_m = torch.autograd.grad(y_m, list(params_m.values()), g)
    grads_ref = torch.autograd.grad(y_ref, list(params_ref.values()), g)
    for name, a, b in zip(params_m, grads_m, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=name)


def test_default_inits_are_the_official_ones():
    """SRM's CFC starts at zero; GCT starts as the identity (α = 1, γ = β = 0)."""
    srm = h.compile_spec("srm", {"C": 24})
    assert torch.count_nonzero(srm.state_dict()["cfc"]) == 0
    gct = h.compile_spec("gct", {"C": 24})
    official = GCTReference(24).state_dict()
    torch.testing.assert_close(gct_to_official(gct.state_dict()), official, rtol=0, atol=0)
    x = torch.randn(2, 24, 5, 6)
    torch.testing.assert_close(gct.eval()(x), x)


@pytest.mark.parametrize(("e", "shape"), [
    pytest.param(3, (2, 3, 2), id="e3-pooled-to-1x1"),   # timm skips the interpolation here
    pytest.param(3, (1, 94, 13), id="e3-h94"),           # 32 -> 94: torch's rounding != Resize's
    pytest.param(2, (2, 1, 6), id="e2-h1"),
])
def test_genet_edge_sizes_in_every_backend(e, shape):
    """The compiled block, NumPy and onnxruntime against timm-style GE-θ⁻ at awkward sizes."""
    m, ref, _ = _pair("genet", {"C": 24, "e": e}, seed=7)
    x = np.random.default_rng(0).standard_normal((shape[0], 24, *shape[1:]), dtype=np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    results = h.assert_backends_agree(m, {"x": x}, label=f"genet-e{e}-{shape}")
    for backend, out in results.items():
        np.testing.assert_allclose(out["y"], expected, rtol=RTOL, atol=ATOL, err_msg=backend)
