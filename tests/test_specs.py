"""Every bundled spec × hyperparameters × input shapes: NumPy, PyTorch and onnxruntime agree.

Besides the three-way differential check, each case checks properties every attention block
must have: batch independence in eval mode, gradients reaching every parameter, state_dict
round trips, one ONNX model serving all batch and spatial sizes, and untouched inputs.
"""

from __future__ import annotations

import io
from itertools import combinations

import _harness as h
import numpy as np
import pytest
import torch

from attncc.api import onnx_session, state_arrays
from attncc.backends import numpy_ref

# At least two settings per spec; sizes are chosen so no two dims of a case share a size
# (the run-time sizes below are 1, 3, 4, 7, 9, 10, 11, 13; pooled dims halve them).
SETTINGS: dict[str, list[tuple[str, dict]]] = {
    # APNB's pyramid: the paper's bins 1, 3, 6, 8 give a 9-bin level (W = 9 here), so these
    # use 1, 5, 6, 8 (S = 126) and 1, 4, 7, 8 (S = 130); tests/test_refs_ann.py runs 1, 3, 6, 8
    "ann": [("C24-k12-v20-bins1568", {"C": 24, "key": 12, "value": 20, "s2": 5}),
            ("C40-k18-v14-bins1478", {"C": 40, "key": 18, "value": 14, "s2": 4, "s3": 7})],
    # RGA's relation channels (2HW) fix the map: 5 x 7 and 8 x 7 (the shapes' H, W do not
    # apply); every inner width distinct: Dc 12, Ds 17, S1 18, S2 9, T1 13, T2 6 / 12, 28, ..
    "rga": [("C24-5x7-c2-s2-d2", {"C": 24, "H": 5, "W": 7, "cha_ratio": 2, "spa_ratio": 2,
                                  "down_ratio": 2}),
            ("C48-8x7-c4-s2-d2", {"C": 48, "H": 8, "W": 7, "cha_ratio": 4, "spa_ratio": 2,
                                  "down_ratio": 2})],
    # dynamic kernels: P = k·k taps, so k = 5 and 7 (k = 3's 9 taps equal W = 9); TAM fixes T
    "condconv": [("C24-O20-E8-k5", {"C": 24, "out": 20, "experts": 8, "k": 5}),
                 ("C40-O16-E6-k7", {"C": 40, "out": 16, "experts": 6, "k": 7})],
    "dynconv": [("C24-O20-K5-k5", {"C": 24, "out": 20, "kernels": 5, "k": 5}),
                ("C40-O16-K2-r8-k7-port-t2", {"C": 40, "out": 16, "kernels": 2, "r": 8,
                                              "extra": 1, "k": 7, "tau": 2.0})],
    "tam": [("C24-T8-k5", {"C": 24, "T": 8, "k": 5}),
            ("C40-T6-b5-k5-l5", {"C": 40, "T": 6, "beta": 5, "k": 5, "local_k": 5})],
    "encnet": [("C24-D12-K8", {"C": 24, "width": 12, "codes": 8}),
               ("C40-D16-K6-survey", {"C": 40, "width": 16, "codes": 6, "res": 0})],
    # the general blocks' widths C // r, d = max(C // r, L) and C // rt avoid every run-time size
    "general": [("C24-r4-L8", {"C": 24, "r": 4, "L": 8}),
                ("C40-r8-k3-L14", {"C": 40, "r": 8, "k": 3, "L": 14})],
    "general_video": [("C60-r4-L16-rt12", {"C": 60, "r": 4, "L": 16, "rt": 12}),
                      ("C96-r6-k5-L20-kt5", {"C": 96, "r": 6, "k": 5, "L": 20, "kt": 5})],
    # PSANet's mask and index table fix the map: 5 x 6 and 6 x 5 (the shapes' H, W do not
    # apply); J = H*W = 30, M = (2H-1)(2W-1) = 99
    "psanet": [("C24-m8-5x6", {"C": 24, "mid": 8, "H": 5, "W": 6}),
               ("C40-m12-6x5", {"C": 40, "mid": 12, "H": 6, "W": 5})],
    # local windows: k x kw with k != kw so rows and columns cannot be confused; odd head
    # widths E give the row / column embedding halves different sizes (E // 2, E - E // 2)
    "sasa": [("C62-h2-k17x5", {"C": 62, "heads": 2, "k": 17, "kw": 5}),
             ("C174-h6-k5x17", {"C": 174, "heads": 6, "k": 5, "kw": 17})],
    # SAN reflects at the border: (k - 1) / 2 must stay below H = 3, so k = 5 (kw < W = 9)
    "san": [("C96-r4-m2-s8-k5x15", {"C": 96, "rel": 4, "mid": 2, "share": 8, "k": 5, "kw": 15}),
            ("C144-r8-m3-s6-k5x17",
             {"C": 144, "rel": 8, "mid": 3, "share": 6, "k": 5, "kw": 17})],
    # LR-Net: G = C // m groups, geometry hidden width G // 2; zero padding, any window size
    "lrnet": [("C60-m5-k15x17", {"C": 60, "m": 5, "k": 15, "kw": 17}),
              ("C96-m6-k5x19", {"C": 96, "m": 6, "k": 5, "kw": 19})],
    # the location l: [N, P] has P = 2 (x, y), fixed by the setting
    "glimpse": [("C1-k5-g6x8-h12", {"C": 1, "P": 2, "scales": 5, "gh": 6, "gw": 8,
                                    "hidden": 12}),
                ("C5-k6-g12x8-h14", {"C": 5, "P": 2, "scales": 6, "gh": 12, "gw": 8,
                                     "hidden": 14, "extent": 0.4})],
    # AiA: c' = C // r is 6 and 5, the triangle 21 and 15 channels (of 36 and 25)
    "aia": [("C24-r4", {"C": 24, "r": 4}), ("C40-r8", {"C": 40, "r": 8})],
    "dcn": [("C5-o8-v2", {"C": 5, "out": 8}),
            ("C12-o6-k5-d2-v1-bias", {"C": 12, "out": 6, "k": 5, "dilation": 2,
                                      "modulated": False, "bias": True})],
    # the residual attention module's bottleneck width C // 4: 6 and 14
    "ran": [("C24", {"C": 24}), ("C56", {"C": 56})],
    # STGCN cuts H into P stripes, so H is fixed here: Q = 7 and 2 rows per stripe
    "stgcn": [("C24-H14-P2", {"C": 24, "H": 14, "P": 2}),
              ("C40-H22-P11", {"C": 40, "H": 22, "P": 11})],
    "stn": [("C5-w8-h12", {"C": 5, "width": 8, "hidden": 12}),
            ("C14-w15-h16", {"C": 14, "width": 15, "hidden": 16})],
    # CCNet: D = C // r is 6 and 5; R recurrences sharing the weights
    "ccnet": [("C24-r4-R2", {"C": 24, "r": 4, "R": 2}), ("C40-r8-R3", {"C": 40, "r": 8, "R": 3})],
    # STA cuts H into K stripes, so H is fixed here (the shapes' H are prime): R = 7 and 2
    "sta": [("C24-H14-K2", {"C": 24, "H": 14, "K": 2}),
            ("C40-H22-K11", {"C": 40, "H": 22, "K": 11})],
    "hard": [("D24-E16-a12", {"D": 24, "E": 16, "att": 12}),
             ("D40-E20-a8", {"D": 40, "E": 20, "att": 8})],
    "rstan": [("C24-E16-a14", {"C": 24, "E": 16, "att": 14}),
              ("C40-E20-a5-g2", {"C": 40, "E": 20, "att": 5, "gamma": 2.0})],
    "stalstm": [("J15-D2-E16-a12", {"J": 15, "D": 2, "E": 16, "att": 12}),
                ("J21-D5-E18-a9", {"J": 21, "D": 5, "E": 18, "att": 9})],
    "se": [("C24-r4", {"C": 24, "r": 4}), ("C40-r8", {"C": 40, "r": 8})],
    # ECA's k: 3 for C=24, 5 for C=136, 7 for C=40 with gamma=1, b=2
    "eca": [("C24", {"C": 24}), ("C136", {"C": 136}), ("C40-g1-b2", {"C": 40, "gamma": 1, "b": 2})],
    "cbam": [("C24-r4-k7", {"C": 24, "r": 4, "k": 7}), ("C40-r8-k3", {"C": 40, "r": 8, "k": 3})],
    "simam": [("C24", {"C": 24}), ("C40-lam0.1", {"C": 40, "lam": 0.1})],
    "scse": [("C24-r2", {"C": 24, "r": 2}), ("C40-r8", {"C": 40, "r": 8})],
    "triplet": [("C24-k7", {"C": 24, "k": 7}), ("C40-k3", {"C": 40, "k": 3})],
    "bam": [("C48-r4-d4", {"C": 48, "r": 4, "d": 4}), ("C40-r8-d2", {"C": 40, "r": 8, "d": 2})],
    "gc": [("C24-r4", {"C": 24, "r": 4}), ("C40-r8", {"C": 40, "r": 8})],
    "nonlocal": [("C24-r2", {"C": 24, "r": 2}), ("C40-r5", {"C": 40, "r": 5})],
    "danet": [("C24-r4", {"C": 24, "r": 4}), ("C40-r8", {"C": 40, "r": 8})],
    "sk": [("C24-g4-r4-L8", {"C": 24, "groups": 4, "r": 4, "L": 8}),
           ("C40-g8-r8-L2", {"C": 40, "groups": 8, "r": 8, "L": 2})],
    "srm": [("C24", {"C": 24}), ("C40", {"C": 40})],
    "gct": [("C24", {"C": 24}), ("C40-eps1e-3", {"C": 40, "eps": 1e-3})],
    # GE-θ⁻ (the entry block), then GE-θ and GE-θ⁺ (`block`); θ⁺'s width M = 8 (C / 16 = 7.5
    # rounded half up, as timm) and 14
    "genet": [("C24-e2", {"C": 24, "e": 2}), ("C40-e3", {"C": 40, "e": 3}),
              ("GETheta-C24-e4", {"block": "GETheta", "C": 24, "e": 4}),
              ("GETheta-C40-e8", {"block": "GETheta", "C": 40, "e": 8}),
              ("GEThetaPlus-C120-e2-M8", {"block": "GEThetaPlus", "C": 120, "e": 2}),
              ("GEThetaPlus-C56-e8-r4-M14",
               {"block": "GEThetaPlus", "C": 56, "e": 8, "r": 4})],
    # coordinate attention's mip = max(8, C // r): 8 and 20
    "coordatt": [("C24-r4", {"C": 24, "r": 4}), ("C40-r2", {"C": 40, "r": 2})],
    "eanet": [("C24-m8", {"C": 24, "m": 8}), ("C40-m12", {"C": 40, "m": 12})],
    "a2net": [("C24-r4", {"C": 24, "r": 4}), ("C40-r8", {"C": 40, "r": 8})],
    "highway": [("D24", {"D": 24}), ("D40-b-2", {"D": 40, "bias_init": -2.0})],
    "spnet": [("C24", {"C": 24}), ("C40", {"C": 40})],
    "vit": [("D24-h2", {"D": 24, "heads": 2}), ("D48-h6", {"D": 48, "heads": 6})],
    "gsop": [("C24-d8", {"C": 24, "d": 8}), ("C40-d12", {"C": 40, "d": 12})],
    "scnet": [("C24-p2", {"C": 24, "pool": 2}), ("C40-p3", {"C": 40, "pool": 3})],  # H=3 fits
    "emanet": [("C24-k8-s3", {"C": 24, "k": 8, "stages": 3}),
               ("C40-k12-s2", {"C": 40, "k": 12, "stages": 2})],
    "softatt": [("D24-E16-a12", {"D": 24, "E": 16, "att": 12}),
                ("D40-E20-a8", {"D": 40, "E": 20, "att": 8})],
    "scacnn": [("C24-E16-k12", {"C": 24, "E": 16, "k": 12}),
               ("C40-E20-k8", {"C": 40, "E": 20, "k": 8})],
    "dnl": [("C24-r2", {"C": 24, "r": 2}), ("C40-r5", {"C": 40, "r": 5})],
    "ocr": [("C24-K6-key8", {"C": 24, "K": 6, "key": 8}),
            ("C40-K5-key12", {"C": 40, "K": 5, "key": 12})],
    "glore": [("C24-n6-s12", {"C": 24, "nodes": 6, "state": 12}),
              ("C40-n8-s16", {"C": 40, "nodes": 8, "state": 16})],
    "gala": [("C24-r4", {"C": 24, "r": 4}), ("C40-r8", {"C": 40, "r": 8})],
    "hamnet": [("C24-r6-s3", {"C": 24, "r": 6, "steps": 3}),
               ("C40-r8-s2", {"C": 40, "r": 8, "steps": 2})],
    "gltr": [("C24", {"C": 24}), ("C40", {"C": 40})],
    # FcaNet's DCT basis fixes the map size: 7 x 5 here (the shapes' H, W do not apply)
    "fcanet": [("C32-r4", {"C": 32, "r": 4, "H": 7, "W": 5}),
               ("C48-r8", {"C": 48, "r": 8, "H": 7, "W": 5})],
    "attgate": [("C24-G20-I12", {"C": 24, "Cg": 20, "inter": 12}),
                ("C40-G16-I8", {"C": 40, "Cg": 16, "inter": 8})],
}
# a spec added to specs/ without an entry above still runs, on these (and a test says so)
DEFAULT_SETTINGS = [("C24", {"C": 24}), ("C40", {"C": 40})]

# run-time dims: batch 1, H != W, odd sizes, a map smaller than CBAM's 7x7 kernel
# (token layouts [N, L, D] take L, per-frame layouts [N, C, T] take T; a dim a block lacks
# is ignored)
SHAPES = [
    pytest.param({"N": 3, "H": 7, "W": 9, "L": 5, "T": 6, "Hg": 4, "Wg": 5}, id="n3_h7_w9"),
    pytest.param({"N": 1, "H": 11, "W": 13, "L": 7, "T": 8, "Hg": 6, "Wg": 7}, id="n1_h11_w13"),
    pytest.param({"N": 4, "H": 3, "W": 10, "L": 11, "T": 12, "Hg": 2, "Wg": 5},
                 id="n4_h3_w10"),
]
BASE_SHAPE = {"N": 3, "H": 7, "W": 9, "L": 5, "T": 6, "Hg": 4, "Wg": 5}

CASES = [
    pytest.param(path.stem, hyper, id=f"{path.stem}-{hid}")
    for path in h.SPEC_PATHS
    for hid, hyper in SETTINGS.get(path.stem, DEFAULT_SETTINGS)
]


def _label(spec: str, hyper: dict, sizes: dict) -> str:
    hp = ",".join(f"{k}={v}" for k, v in hyper.items())
    sz = ",".join(f"{k}={v}" for k, v in sizes.items())
    return f"specs/{spec}.attn[{hp}] at {sz}"


def _module(spec: str, hyper: dict, seed: int = 0, randomize: bool = True):
    m = h.compile_spec(spec, hyper, seed=seed)
    return h.randomize_(m, seed + 101) if randomize else m


def test_every_bundled_spec_is_covered():
    stems = {p.stem for p in h.SPEC_PATHS}
    assert stems >= {"se", "eca", "cbam"}
    assert all(len(v) >= 2 for v in SETTINGS.values())
    missing = sorted(stems - set(SETTINGS))
    assert not missing, f"add test settings for {missing} to SETTINGS"


def test_eca_settings_cover_three_kernel_sizes():
    ks = [h.compile_spec("eca", hp).state_dict()["s.weight"].shape[-1]
          for _, hp in SETTINGS["eca"]]
    assert ks == [3, 5, 7]


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_case_dim_sizes_are_distinct(spec, hyper, sizes):
    """Guards the table itself: equal sizes could hide an axis mix-up."""
    ir = h.compile_spec(spec, hyper).ir
    # the batch pass's stacking dim (Pair, size 2) is the compiler's, not the test's choice
    made = {ir.node(n).attrs["as"] for n in ir.graph.nodes if ir.node(n).op == "stack"
            and ir.node(n).name.endswith(".inputs")}
    all_sizes = {d: s for d, s in ir.dims.items() if s is not None and d not in made}
    # run-time dims the inputs carry; derived ones (L = H + W, pooled Hs) follow from them
    all_sizes.update({d: sizes[d] for d, s in ir.dims.items() if s is None and d in sizes})
    # a dim renamed with `as` is a second name for the same size (DANet's C x C energy)
    renamed = {frozenset(p) for n in ir.graph.nodes if ir.node(n).op == "rename"
               for p in zip(ir.node(ir.inputs_of(n)[0]).out.dims, ir.node(n).out.dims,
                            strict=True)}
    # so is a covariance's second matrix dim (GSoP's Dr x Dc)
    renamed |= {frozenset((nd.attrs["features"], nd.attrs["as"])) for nd in map(ir.node, ir.graph)
                if nd.op == "covariance"}
    clashes = [(a, b) for a, b in combinations(all_sizes, 2)
               if all_sizes[a] == all_sizes[b] and all_sizes[a] != 1
               and frozenset((a, b)) not in renamed]
    assert not clashes, f"dims with equal sizes in {all_sizes}"


# ---- the differential check ----
@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_backends_agree_on_random_weights(spec, hyper, sizes):
    m = _module(spec, hyper)
    x = h.make_inputs(m.ir, sizes, seed=5)
    h.assert_backends_agree(m, x, label=_label(spec, hyper, sizes), **TOLERANCE.get(spec, {}))


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_backends_agree_on_default_init(spec, hyper):
    """The module's own init: zero biases and running means, unit BN weight and variance."""
    m = _module(spec, hyper, randomize=False)
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=6)
    h.assert_backends_agree(m, x, label=_label(spec, hyper, BASE_SHAPE) + " (default init)")


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_randomize_changes_every_float_tensor(spec, hyper):
    m = _module(spec, hyper, randomize=False)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    h.randomize_(m, 3)
    for k, v in m.state_dict().items():
        if not v.is_floating_point():
            assert torch.equal(v, before[k]), k
            continue
        assert torch.all(v != before[k]), f"{k} kept some default values"
        assert torch.all(v != 0), f"{k} has zeros"
        if k.endswith("running_var"):
            assert torch.all(v > 0), k


# ---- properties of the compiled block ----
@pytest.mark.parametrize("backend", ["numpy", "torch", "ort"])
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_batch_independence_in_eval_mode(spec, hyper, backend):
    """Changing samples 1.. leaves sample 0's outputs and attention maps unchanged."""
    m = _module(spec, hyper)
    run = h.BACKENDS[backend]
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=7)
    other = h.make_inputs(m.ir, BASE_SHAPE, seed=8)
    x2 = {k: np.concatenate([v[:1], other[k][1:]]) for k, v in x.items()}
    a, b = run(m, x), run(m, x2)
    for key in a:
        np.testing.assert_allclose(b[key][0], a[key][0], rtol=1e-6, atol=1e-7, err_msg=key)
        assert not np.allclose(b[key][1:], a[key][1:]), f"{key}: other samples did not change"


# wider float32 tolerances, with the reason: GloRe's code (normalize=False) sums over H·W
# twice without scaling, so at random weights its outputs reach ~5e2 and float32 rounding
# leaves ~1e-4 absolute on small elements in every backend (each is that far from float64)
TOLERANCE = {"glore": {"atol": 3e-4},
             # STGCN's E = (W_φ x)ᵀ W_θ x is a dot product over C that can cancel; A = E²/ΣE²
             # doubles its relative rounding error, which torch's and ORT's float32 einsums
             # (summing in different orders) leave at ~2e-4 on a few adjacency entries
             "stgcn": {"rtol": 1e-3}}

# parameters the authors' code deliberately keeps out of the gradient: EMANet runs its EM
# iterations under no_grad, so the bases and the input conv before them get none (the author
# confirms it is intended: XiaLiPKU/EMANet issue #14; tests/test_refs_emanet.py checks the set)
NO_GRADIENT = {"emanet": {"conv1.weight", "conv1.bias", "mu"},
               "hamnet": {"ham.bases"}}  # the NMF iterations run under no_grad too

# parameters whose gradient is zero by mathematics, left in because the authors' code has
# them: a bias added before a softmax over every position it is added to cannot change the
# softmax (GC's and DNL's `conv_mask` bias), so its gradient is rounding noise or exactly 0
SHIFT_INVARIANT = {"gc": {"conv_mask.bias"}, "dnl": {"conv_mask.bias"}}


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_backward_reaches_every_parameter(spec, hyper):
    m = _module(spec, hyper).train()
    xs = [torch.from_numpy(v).requires_grad_()
          for v in h.make_inputs(m.ir, BASE_SHAPE, seed=9).values()]
    ys = m(*xs)
    ys = ys if isinstance(ys, tuple) else (ys,)  # a block may return several outputs
    g = torch.Generator().manual_seed(0)
    sum((y * torch.randn(y.shape, generator=g)).sum() for y in ys).backward()
    for x in xs:
        assert x.grad is not None and torch.any(x.grad != 0)
    for name, p in m.named_parameters():
        if name in NO_GRADIENT.get(spec, ()):
            assert p.grad is None or not torch.any(p.grad != 0), f"{name} got a gradient"
            continue
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.all(torch.isfinite(p.grad)), name
        if name in SHIFT_INVARIANT.get(spec, ()):
            assert torch.all(p.grad.abs() < 1e-4), f"{name}: the softmax should cancel it"
            continue
        assert torch.any(p.grad != 0), f"{name} got an all-zero gradient"


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_state_dict_round_trip(spec, hyper):
    src = _module(spec, hyper, seed=0)
    dst = _module(spec, hyper, seed=1, randomize=False)  # differently initialised
    x = h.make_inputs(src.ir, BASE_SHAPE, seed=10)
    want = h.run_torch(src, x)["y"]
    if src.state_dict():  # a parameter-free block (SimAM) has nothing to differ in
        assert not np.allclose(h.run_torch(dst, x)["y"], want), "the two modules start out equal"
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    buf.seek(0)
    dst.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    np.testing.assert_array_equal(h.run_torch(dst, x)["y"], want)
    np.testing.assert_array_equal(h.run_numpy(dst, x)["y"], h.run_numpy(src, x)["y"])


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_one_onnx_model_serves_every_batch_and_spatial_size(spec, hyper):
    m = _module(spec, hyper)
    model = h.onnx_model(m)
    for inp, n in zip(model.graph.input, m.ir.inputs, strict=True):
        dims = inp.type.tensor_type.shape.dim
        got = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]
        # run-time dims by name, fixed dims by size: x: [N, C, H, W] -> ["N", C, "H", "W"]
        want = [d if m.ir.dims[d] is None else m.ir.dims[d] for d in m.ir.node(n).out.dims]
        assert got == want, inp.name
        # what the setting fixes is fixed; every other dim (batch, spatial, length) is not
        for d, size in zip(m.ir.node(n).out.dims, got, strict=True):
            assert size == (hyper[d] if d in hyper else d), f"{inp.name}: `{d}` is {size}"
        assert "N" in got, f"{inp.name}: the batch size is fixed"
    for out in model.graph.output:
        lead = out.type.tensor_type.shape.dim[0]
        assert lead.dim_param == "N", out.name
    sess = onnx_session(model, optimize=False)
    for sizes in (p.values[0] for p in SHAPES):
        x = h.make_inputs(m.ir, sizes, seed=11)
        want = h.run_torch(m, x)
        got = dict(zip(h.output_keys(m.ir), sess.run(None, x), strict=True))
        errors = h.compare(_label(spec, hyper, sizes), ("torch", "ort"), want, got,
                           **TOLERANCE.get(spec, {}))
        assert not errors, "\n".join(errors)


def _forward_torch_eval(m, x):
    m.eval()
    with torch.no_grad():
        m(*(torch.from_numpy(v) for v in x.values()))  # sharing memory with the arrays


def _forward_torch_train(m, x):
    m.train()
    ys = m(*(torch.from_numpy(v) for v in x.values()))
    ys = ys if isinstance(ys, tuple) else (ys,)
    if ys[0].requires_grad:  # a parameter-free block's output needs no gradient
        sum(y.sum() for y in ys).backward()


def _forward_numpy(m, x):
    numpy_ref.run(m.ir, x, state_arrays(m))


FORWARDS = {
    "numpy": _forward_numpy,
    "torch-eval": _forward_torch_eval,
    "torch-train": _forward_torch_train,
    "ort": h.run_ort,
}


@pytest.mark.parametrize("backend", list(FORWARDS))
@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_inputs_are_not_mutated(spec, hyper, backend):
    m = _module(spec, hyper)
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=12)
    before = {k: v.copy() for k, v in x.items()}
    FORWARDS[backend](m, x)
    for k, v in x.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def _flat(result) -> list[torch.Tensor]:
    ys, att = result
    return [*(ys if isinstance(ys, tuple) else (ys,)), *att.values()]


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_inference_path_equals_the_autograd_path(spec, hyper):
    """Without autograd the generated forward writes over dead temporaries
    (attncc/backends/inplace.py). It must give what the autograd path gives, leave the
    parameters and buffers alone, and hand back tensors that a later call does not touch."""
    m = _module(spec, hyper).eval()
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=15)
    args = [torch.from_numpy(v) for v in x.values()]
    state = {k: v.clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        first = _flat(m(*args, return_attention=True))
        kept = [t.clone() for t in first]
        second = _flat(m(*args, return_attention=True))
    graded = _flat(m(*args, return_attention=True))
    for a, b, c, d in zip(first, kept, second, graded, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)  # not overwritten
        torch.testing.assert_close(c, d.detach(), rtol=1e-6, atol=1e-6, equal_nan=True)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0, msg=k)


@pytest.mark.parametrize(("spec", "hyper"), CASES)
def test_every_tensor_is_registered_and_moves_with_to(spec, hyper):
    """No stray tensor attribute: `.to(float64)` converts every floating parameter and
    buffer, the float64 module runs in float64 and agrees with float32."""
    m = _module(spec, hyper).eval()
    registered = {id(t) for t in [*m.parameters(), *m.buffers()]}
    for name, sub in m.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Tensor):
                assert id(value) in registered, f"{name}.{attr} is an unregistered tensor"
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=14)
    want = h.run_torch(m, x)
    m64 = m.to(torch.float64)
    assert all(t.dtype == torch.float64 for t in m64.state_dict().values()
               if t.is_floating_point())
    with torch.no_grad():
        y, att = m64(*(torch.from_numpy(v).double() if v.dtype == np.float32
                       else torch.from_numpy(v) for v in x.values()), return_attention=True)
    ys = y if isinstance(y, tuple) else (y,)
    got = [*ys, *(att[a] for a in m.ir.attention)]
    for key, v in zip(h.output_keys(m.ir), got, strict=True):
        assert v.dtype == torch.float64, f"{key} is {v.dtype}: a float32 tensor stayed behind"
        scale = max(1.0, float(np.abs(want[key]).max()))
        np.testing.assert_allclose(v.numpy(), want[key], rtol=1e-3, atol=1e-4 * scale,
                                   err_msg=key)


def _presets() -> list:
    from attncc.compiler import presets, read_source

    return [pytest.param(path.stem, name, id=f"{path.stem}-{name}")
            for path in h.SPEC_PATHS for name in presets(read_source(path))]


@pytest.mark.parametrize(("spec", "preset"), _presets())
def test_every_advertised_preset_constructs_and_runs(spec, preset):
    """Each `preset` line at the spec's own example shapes: compiles, runs, finite output."""
    import attncc
    from attncc.compiler import example_shapes, read_source

    shapes = example_shapes(read_source(h.SPECS_DIR / f"{spec}.attn"))
    m = attncc.compile(h.SPECS_DIR / f"{spec}.attn", preset=preset, shapes=shapes, seed=0)
    dims = {m.ir.node(n).name: m.ir.node(n).out.dims for n in m.ir.inputs}
    sizes = {d: s for name, shape in shapes.items()
             for d, s in zip(dims[name], shape, strict=True)}
    out = h.run_torch(m, h.make_inputs(m.ir, sizes, seed=15))
    assert all(np.isfinite(v).all() for v in out.values())


# ---- the harness itself: a failure must say what failed ----
def test_mismatch_names_errors_and_first_index():
    a = np.zeros((2, 3), dtype=np.float32)
    b = a.copy()
    b[1, 2] = 0.5
    why = h.mismatch(a, b, h.RTOL, h.ATOL)
    assert "max abs error 0.5" in why and "first at index (1, 2)" in why
    assert h.mismatch(a, a + 1e-7, h.RTOL, h.ATOL) is None
    assert "dtypes differ" in h.mismatch(a, a.astype(np.float64), h.RTOL, h.ATOL)


def test_disagreement_is_reported_and_dumped(monkeypatch, repro_dir):
    m = _module("se", {"C": 24, "r": 4})
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=13)
    real = h.run_ort

    def broken_ort(module, inputs, model=None):
        out = real(module, inputs, model)
        out["y"] = out["y"].copy()
        out["y"][0, 1, 2, 3] += 1.0
        return out

    monkeypatch.setattr(h, "run_ort", broken_ort)
    with pytest.raises(AssertionError) as info:
        h.assert_backends_agree(m, x, label="specs/se.attn[C=24]")
    msg = str(info.value)
    assert "specs/se.attn[C=24]: numpy vs ort disagree on output `y`" in msg
    assert "torch vs ort" in msg and "numpy vs torch" not in msg
    assert "first at index (0, 1, 2, 3)" in msg and "max rel error" in msg
    assert "ReferenceEvaluator agrees with: numpy" in msg
    folder = repro_dir / "specs_se.attn_C_24_"
    assert sorted(p.name for p in folder.iterdir()) == [
        "generated.py", "hyper.json", "inputs.npz", "model.onnx", "spec.attn", "state.npz"]
