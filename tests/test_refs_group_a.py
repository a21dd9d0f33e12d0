"""Compiled SimAM, scSE, triplet attention and BAM against modules written from the authors' code.

Each reference in tests/paper_refs loads the randomised compiled module's state_dict with
strict=True (so names and shapes must agree exactly: for scSE and triplet attention these are
the official modules' own names, so official checkpoints load as they are), then the outputs
are compared in eval mode; blocks with BatchNorm also take one training step, where outputs,
gradients and the running buffers must match.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.bam import BAMReference
from paper_refs.scse import SCSEReference
from paper_refs.simam import SimAMReference
from paper_refs.triplet import TripletReference

import attncc

REFS = {
    "simam": lambda hp: SimAMReference(lam=hp.get("lam", 1e-4)),
    "scse": lambda hp: SCSEReference(hp["C"], reduction_ratio=hp["r"]),
    "triplet": lambda hp: TripletReference(k=hp["k"]),
    "bam": lambda hp: BAMReference(hp["C"], r=hp["r"], d=hp["d"]),
}
# the settings of tests/test_specs.py
CASES = [
    pytest.param("simam", {"C": 24}, id="simam-C24"),
    pytest.param("simam", {"C": 40, "lam": 0.1}, id="simam-C40-lam0.1"),
    pytest.param("scse", {"C": 24, "r": 2}, id="scse-C24-r2"),
    pytest.param("scse", {"C": 40, "r": 8}, id="scse-C40-r8"),
    pytest.param("triplet", {"C": 24, "k": 7}, id="triplet-C24-k7"),
    pytest.param("triplet", {"C": 40, "k": 3}, id="triplet-C40-k3"),
    pytest.param("bam", {"C": 48, "r": 4, "d": 4}, id="bam-C48-r4-d4"),
    pytest.param("bam", {"C": 40, "r": 8, "d": 2}, id="bam-C40-r8-d2"),
]
WITH_BN = [c for c in CASES if c.values[0] in ("triplet", "bam")]
# H != W, and no size equal to another dim's (C, C // r, k)
SHAPES = [
    pytest.param((3, 7, 9), id="n3_h7_w9"),
    pytest.param((1, 11, 13), id="n1_h11_w13"),
]
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _pair(spec: str, hyper: dict, seed: int = 0):
    """A randomised compiled module and the reference holding the same weights."""
    return h.paired(spec, hyper, REFS[spec](hyper), seed=seed)


def _input(hyper: dict, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    return h.nchw(hyper["C"], shape, seed)


def _assert_eval_match(m, ref, x):
    m.eval()
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), **TOL)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_matches_authors_module_in_eval_mode(spec, hyper, shape):
    m, ref = _pair(spec, hyper, seed=3)
    _assert_eval_match(m, ref, _input(hyper, shape, seed=1))


@pytest.mark.parametrize(("spec", "hyper"), WITH_BN)
def test_matches_authors_module_for_one_training_step(spec, hyper):
    """Batch statistics, running-buffer updates and gradients all match the reference."""
    m, ref = _pair(spec, hyper, seed=4)
    m.train()
    ref.train()
    x = _input(hyper, (3, 7, 9), seed=2)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    y, y_ref = m(x), ref(x)
    torch.testing.assert_close(y, y_ref, **TOL)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    got, want = m.state_dict(), ref.state_dict()
    assert got.keys() == want.keys()
    moved = [k for k in want if k.endswith(("running_mean", "running_var"))]
    assert moved
    for k in moved:  # the step really updated the buffers (else it compares the same values)
        assert not torch.equal(got[k], before[k]), k
    for k in want:
        torch.testing.assert_close(got[k], want[k], **TOL, msg=lambda s, k=k: f"{k}: {s}")
    grads = dict(ref.named_parameters())
    for name, p in m.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, **TOL,
                                   msg=lambda s, name=name: f"grad of {name}: {s}")


# ---- the variants and names the specs promise ----
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", [{"C": 24, "r": 2}, {"C": 40, "r": 8}], ids=["C24-r2", "C40-r8"])
def test_scse_add_is_the_miccai_papers_sum(hyper, shape):
    m = h.randomize_(attncc.compile(h.SPECS_DIR / "scse.attn", block="SCSEAdd", seed=0,
                                    **hyper), 5)
    ref = SCSEReference(hyper["C"], reduction_ratio=hyper["r"], fusion="add")
    ref.load_state_dict(m.state_dict(), strict=True)
    x = _input(hyper, shape, seed=6)
    _assert_eval_match(m, ref, x)
    # and it is not the max-out block under another name
    m_max, _ = _pair("scse", hyper, seed=5)
    with torch.no_grad():
        assert not torch.allclose(m_max.eval()(x), m(x))


@pytest.mark.parametrize(("preset", "lam"), [("official", 1e-4), ("imagenet", 0.1)])
def test_simam_presets(preset, lam):
    m = attncc.compile(h.SPECS_DIR / "simam.attn", preset=preset, C=24)
    assert m.ir.hyper["lam"] == lam
    x = _input({"C": 24}, (2, 7, 9), seed=7)
    _assert_eval_match(m, SimAMReference(lam=lam), x)


def test_simam_variance_divides_by_hw_minus_one():
    """On a 2×2 map [0, 0, 0, 4]: mean 1, d = [1, 1, 1, 9], v = 12 / 3 = 4 (not 12 / 4)."""
    m = attncc.compile(h.SPECS_DIR / "simam.attn", C=1, lam=0.0)
    x = torch.tensor([0.0, 0.0, 0.0, 4.0]).view(1, 1, 2, 2)
    _, att = m(x, return_attention=True)
    want = torch.sigmoid(torch.tensor([1.0, 1.0, 1.0, 9.0]) / 16 + 0.5).view(1, 1, 2, 2)
    torch.testing.assert_close(att["s"], want)


def test_scse_and_triplet_keys_are_the_official_modules():
    """Official checkpoints load into the compiled blocks without renaming."""
    for spec, hyper, ref in [("scse", {"C": 24, "r": 2}, SCSEReference(24, 2)),
                             ("triplet", {"C": 24, "k": 7}, TripletReference(7))]:
        keys = list(h.compile_spec(spec, hyper).state_dict())
        assert keys == list(ref.state_dict()), spec


def test_triplet_kernels_keep_the_codes_axis_order():
    """cw slides over (C, W), hc over (H, C): a kernel transposed would not match the code.

    With k = 3 and a kernel that is not symmetric, swapping the conv's axes changes the
    output; the eval comparisons above would catch it, this states it on its own.
    """
    hyper = {"C": 24, "k": 3}
    m, ref = _pair("triplet", hyper, seed=8)
    x = _input(hyper, (2, 7, 9), seed=9)
    _assert_eval_match(m, ref, x)
    sd = ref.state_dict()
    for branch in ("cw", "hc"):
        key = f"{branch}.conv.conv.weight"
        sd[key] = sd[key].transpose(-1, -2).clone()
    ref.load_state_dict(sd)
    with torch.no_grad():
        assert not torch.allclose(m(x), ref(x), **TOL)


def test_bam_att_is_one_plus_sigmoid_of_the_product():
    hyper = {"C": 48, "r": 4, "d": 4}
    m, _ = _pair("bam", hyper, seed=10)
    m.eval()
    x = _input(hyper, (2, 7, 9), seed=11)
    with torch.no_grad():
        y, att = m(x, return_attention=True)
    assert att["att"].shape == x.shape
    assert torch.all(att["att"] > 1) and torch.all(att["att"] < 2)
    torch.testing.assert_close(y, att["att"] * x)
