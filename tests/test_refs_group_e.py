"""Compiled ViT MHSA, GSoP and SCConv blocks against modules written from the authors' code.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True (through `from_compiled` where the code holds a tensor in another shape: torch's
stacked [3D, D] in_proj_weight for ViT, conv-kernel dims for GSoP's row conv and FC), so
names and shapes must line up before any number is compared.
"""

from __future__ import annotations

from collections.abc import Callable

import _harness as h
import pytest
import torch
from paper_refs import gsop, scnet, vit

from attncc.diagnostics import AttnccError


def _same(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state)


# spec -> (reference constructor, compiled state_dict -> reference state_dict)
REFS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable]] = {
    "vit": (lambda hp: vit.MHSAReference(hp["D"], heads=hp["heads"]), vit.from_compiled),
    "gsop": (lambda hp: gsop.GSoPReference(hp["C"], d=hp["d"]), gsop.from_compiled),
    "scnet": (lambda hp: scnet.SCConvReference(hp["C"], pool=hp["pool"]), _same),
}
# the hyperparameters of tests/test_specs.py SETTINGS
CASES = [
    pytest.param("vit", {"D": 24, "heads": 2}, id="vit-D24-h2"),
    pytest.param("vit", {"D": 48, "heads": 6}, id="vit-D48-h6"),
    pytest.param("gsop", {"C": 24, "d": 8}, id="gsop-C24-d8"),
    pytest.param("gsop", {"C": 40, "d": 12}, id="gsop-C40-d12"),
    pytest.param("scnet", {"C": 24, "pool": 2}, id="scnet-C24-p2"),
    pytest.param("scnet", {"C": 40, "pool": 3}, id="scnet-C40-p3"),
    pytest.param("scnet", {"C": 40, "pool": 4}, id="scnet-C40-p4"),   # the code's default r
]
# (N, H, W) for images, (N, L) for tokens: odd sizes, H != W, maps the pool divides unevenly
SHAPES = [
    pytest.param({"N": 3, "H": 7, "W": 9, "L": 7}, id="n3_h7_w9_l7"),
    pytest.param({"N": 1, "H": 11, "W": 5, "L": 13}, id="n1_h11_w5_l13"),
]
TRAIN_CASES = [p for p in CASES if p.values[0] in ("gsop", "scnet")]  # the blocks with BN
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the paper reference holding the same weights."""
    make, convert = REFS[spec]
    return h.paired(spec, hyper, make(hyper), convert, seed=seed)


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_paper_reference_in_eval_mode(spec, hyper, sizes):
    m, ref = _pair(spec, hyper)
    m.eval()
    ref.eval()
    x = h.torch_input(m, sizes, seed=1)
    with torch.no_grad():
        y = m(x)
        torch.testing.assert_close(y, ref(x), **TOL)
        assert not torch.allclose(y, x, atol=1e-3)


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), [c for c in CASES if c.values[0] == "vit"])
def test_vit_attention_map_is_torchs_per_head_weights(spec, hyper, sizes):
    """The compiled a: [N, L, Hd, M] is torch's unaveraged weights [N, heads, L, M]."""
    m, ref = _pair(spec, hyper)
    x = h.torch_input(m, sizes, seed=2)
    with torch.no_grad():
        _, maps = m(x, return_attention=True)
        a = maps["a"] if isinstance(maps, dict) else maps[0]
        _, want = ref(x, return_attention=True)
    torch.testing.assert_close(a.permute(0, 2, 1, 3), want, **TOL)
    torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)), **TOL)


@pytest.mark.parametrize(("spec", "hyper"), TRAIN_CASES)
def test_training_step_matches(spec, hyper):
    """Batch statistics in the forward pass, gradients, then the same running buffers.

    In float64: BN over batch statistics (GSoP's row BN sees few samples) magnifies float32
    summation-order differences.
    """
    m, ref = _pair(spec, hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = h.torch_input(m, {"N": 3, "H": 7, "W": 9}, seed=3).double()
    y, want = m(x), ref(x)
    torch.testing.assert_close(y, want, **TOL)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=y.dtype)
    (y * w).sum().backward()
    (want * w).sum().backward()
    _, convert = REFS[spec]
    grads = convert({k: p.grad for k, p in m.named_parameters()})
    for k, p in ref.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-5, atol=1e-6, msg=k)
    torch.testing.assert_close(convert(m.state_dict()), ref.state_dict(), rtol=1e-5, atol=1e-6)


def test_vit_heads_must_divide_d():
    with pytest.raises(AttnccError) as err:
        h.compile_spec("vit", {"D": 24, "heads": 5})
    assert "heads_divide_D" in str(err.value)
