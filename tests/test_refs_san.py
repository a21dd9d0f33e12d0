"""Compiled SAN attention (pairwise and patchwise) against the authors' SAM (CPU form of its
kernels).

Outputs and weight maps in eval mode at two settings and two input shapes, a float64 training
step (BN batch statistics; running statistics after it) with the gradients, and the
reflection padding at the border.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.san import SAMReference, from_compiled

import attncc

CASES = [
    pytest.param({"C": 32, "rel": 4, "mid": 2, "share": 4, "k": 5, "kw": 3},
                 id="C32-R8-M16-s4-k5x3"),
    pytest.param({"C": 48, "rel": 8, "mid": 3, "share": 8, "k": 3, "kw": 7},
                 id="C48-R6-M16-s8-k3x7"),
]
SHAPES = [pytest.param((2, 6, 9), id="n2_h6_w9"), pytest.param((1, 5, 11), id="n1_h5_w11")]


MODES = [pytest.param(0, id="pairwise"), pytest.param(1, id="patchwise")]
BLOCKS = {0: "SAN", 1: "SANPatchwise"}


def _pair(hyper: dict, seed: int, sa_type: int = 0):
    c = hyper["C"]
    ref = SAMReference(sa_type, c, c // hyper["rel"], c // hyper["mid"], hyper["share"],
                       hyper["k"], hyper["kw"])
    m = h.randomize_(attncc.compile(h.SPECS_DIR / "san.attn", block=BLOCKS[sa_type], seed=0,
                                    **hyper), seed)
    ref.load_state_dict(from_compiled(m.state_dict()), strict=True)
    return m, ref


@pytest.mark.parametrize("sa_type", MODES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_the_authors_module(hyper, shape, sa_type):
    m, ref = _pair(hyper, seed=3, sa_type=sa_type)
    x = h.nchw(hyper["C"], shape, seed=4)
    (y, maps), (want, att) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, want, rtol=1e-4, atol=1e-5)
    # the code's weights [n, c_w, k, kw, H, W]; pairwise's a: [N, Wc, H, W, Kh, Kw],
    # patchwise's w: [N, Wc, Kh, Kw, H, W]
    got = maps["a"].permute(0, 1, 4, 5, 2, 3) if sa_type == 0 else maps["w"]
    torch.testing.assert_close(got, att, rtol=1e-4, atol=1e-5)


def test_patchwise_three_backends_agree():
    hyper = {"C": 48, "rel": 8, "mid": 3, "share": 8, "k": 3, "kw": 7}
    m, _ = _pair(hyper, seed=2, sa_type=1)
    x = h.nchw(48, (2, 5, 9), seed=3).numpy()
    h.assert_backends_agree(m, {"x": x}, label="san patchwise")


@pytest.mark.parametrize("sa_type", MODES)
@pytest.mark.parametrize("hyper", CASES)
def test_training_step_matches_in_float64(hyper, sa_type):
    m, ref = _pair(hyper, seed=5, sa_type=sa_type)
    m, ref = m.double().train(), ref.double().train()
    x = h.nchw(hyper["C"], (3, 5, 8), seed=6).double()
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w = torch.randn(3, hyper["C"] // hyper["mid"], 5, 8, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(7))
    y1, y2 = m(x1), ref(x2)[0]
    torch.testing.assert_close(y1, y2, rtol=1e-9, atol=1e-10)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-9, atol=1e-10)
    grads = {k: p.grad for k, p in ref.named_parameters()}
    for name, p in m.named_parameters():
        g = grads[name]
        torch.testing.assert_close(p.grad, g.reshape(p.grad.shape), rtol=1e-9, atol=1e-10,
                                   msg=lambda s, name=name: f"{name}: {s}")
    # running statistics moved the same way (unbiased variance over N * H * W * k * kw)
    torch.testing.assert_close(from_compiled(m.state_dict()), ref.state_dict(), rtol=1e-9,
                               atol=1e-10)


def test_border_windows_are_reflected():
    """At pixel (0, 0) the tap one row up reads row 1: its weight equals the tap one row down."""
    hyper = {"C": 32, "rel": 4, "mid": 2, "share": 4, "k": 5, "kw": 3}
    m, _ = _pair(hyper, seed=8)
    m.eval()
    with torch.no_grad():
        _, maps = m(h.nchw(32, (1, 6, 7), seed=9), return_attention=True)
    a = maps["a"][0, :, 0, 0]                           # [Wc, Kh=5, Kw=3] at pixel (0, 0)
    torch.testing.assert_close(a[:, 1], a[:, 3])        # rows -1 and +1: both read row 1
    torch.testing.assert_close(a[:, :, 0], a[:, :, 2])  # columns -1 and +1: both column 1
