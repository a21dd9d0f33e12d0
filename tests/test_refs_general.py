"""Compiled general attention blocks (survey section 4.1; specs/general.attn, the image
variant, and specs/general_video.attn) against a plain-torch re-writing of their design from
the code of their parts (SE, CBAM's spatial gate, TAM's local branch, SK's selection); the
reference loads the compiled state_dict through `from_compiled` with strict=True.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.general import GeneralReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
MAPS = ("channel", "spatial", "a_c", "a_s")
IMAGE = [pytest.param({"C": 24, "r": 4, "L": 8}, id="C24-r4-L8"),
         pytest.param({"C": 40, "r": 8, "k": 3, "L": 14}, id="C40-r8-k3-L14")]
VIDEO = [pytest.param({"C": 60, "r": 4, "L": 16, "rt": 12}, id="C60-r4-L16-rt12"),
         pytest.param({"C": 96, "r": 6, "k": 5, "L": 20, "kt": 5}, id="C96-r6-k5-L20-kt5")]
IMAGE_SHAPES = [pytest.param((2, 7, 9), id="n2_h7_w9"), pytest.param((3, 11, 5), id="n3_h11_w5")]
VIDEO_SHAPES = [pytest.param((2, 5, 7, 9), id="n2_t5_h7_w9"),
                pytest.param((3, 8, 11, 6), id="n3_t8_h11_w6")]


def _pair(stem: str, hyper: dict, seed: int = 0):
    ref = GeneralReference(video=stem == "general_video", **hyper)
    m = h.randomize_(h.compile_spec(stem, hyper), seed)
    ref.load_state_dict(from_compiled(m.state_dict(), ref), strict=True)
    return m, ref


def _input(hyper: dict, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape[0], hyper["C"], *shape[1:], generator=gen)


def _check_eval(stem: str, hyper: dict, shape: tuple[int, ...]) -> None:
    m, ref = _pair(stem, hyper)
    x = _input(hyper, shape, seed=1)
    (y, att), (want_y, want) = h.eval_both(m, ref, x)
    torch.testing.assert_close(y, want_y, **TOL)
    assert set(att) == set(want)
    for name in want:
        torch.testing.assert_close(att[name], want[name], **TOL, msg=name)
    branches = [att[k] for k in ("a_c", "a_s", "a_t") if k in att]
    torch.testing.assert_close(sum(branches), torch.ones_like(branches[0]), **TOL)


def _check_training(stem: str, hyper: dict, shape: tuple[int, ...]) -> None:
    """BN's batch statistics, its running buffers, and one backward (float64)."""
    m, ref = _pair(stem, hyper, seed=2)
    m.train().double()
    ref.train().double()
    x = _input(hyper, shape, seed=3).double()
    y_m, (y_ref, _) = m(x), ref(x)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(from_compiled(m.state_dict(), ref), ref.state_dict(),
                               rtol=1e-9, atol=1e-10)
    g = torch.randn_like(y_m)
    params_m = dict(m.named_parameters())
    grads_m = dict(zip(params_m, torch.autograd.grad(y_m, list(params_m.values()), g),
                       strict=True))
    params_ref = dict(ref.named_parameters())
    grads_ref = dict(zip(params_ref, torch.autograd.grad(y_ref, list(params_ref.values()), g),
                         strict=True))
    converted = from_compiled(grads_m, ref)
    assert set(converted) == set(grads_ref)
    for name, gr in grads_ref.items():
        torch.testing.assert_close(converted[name], gr, rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("hyper", IMAGE)
def test_image_matches_reference_in_eval_mode(hyper, shape):
    _check_eval("general", hyper, shape)


@pytest.mark.parametrize("shape", VIDEO_SHAPES)
@pytest.mark.parametrize("hyper", VIDEO)
def test_video_matches_reference_in_eval_mode(hyper, shape):
    _check_eval("general_video", hyper, shape)


@pytest.mark.parametrize("hyper", IMAGE)
def test_image_training_step_matches(hyper):
    _check_training("general", hyper, (3, 9, 7))


@pytest.mark.parametrize("hyper", VIDEO)
def test_video_training_step_matches(hyper):
    _check_training("general_video", hyper, (2, 7, 5, 6))


def test_equal_branch_scores_average_the_branches():
    """With the same select map for both branches, every channel weighs them 1/2 each."""
    hyper = {"C": 24, "r": 4, "L": 8}
    m = h.randomize_(h.compile_spec("general", hyper), 4).eval()
    x = _input(hyper, (2, 7, 9), seed=5)
    with torch.no_grad():
        m.select_s.weight.copy_(m.select_c.weight)
        y, att = m(x, return_attention=True)
    torch.testing.assert_close(att["a_c"], torch.full_like(att["a_c"], 0.5))
    want = 0.5 * (x * att["channel"][:, :, None, None] + x * att["spatial"][:, None])
    torch.testing.assert_close(y, want, **TOL)
