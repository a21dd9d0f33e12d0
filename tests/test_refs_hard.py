"""Compiled hard attention (Xu et al., ICML 2015) against a transcription of arctic-captions'
stochastic attention step; the reference loads the compiled state_dict through
`from_compiled` with strict=True. The block gives α and the expected context; the sampled
context is formed outside it, which the last tests do as a caller would.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.hard import HardAttentionReference, from_compiled

TOL = {"rtol": 1e-4, "atol": 1e-5}
CASES = [
    pytest.param({"D": 24, "E": 16, "att": 12}, id="D24-E16-a12"),
    pytest.param({"D": 40, "E": 20, "att": 8}, id="D40-E20-a8"),
]
SHAPES = [pytest.param((3, 7), id="n3_l7"), pytest.param((2, 196), id="n2_l196")]


def _pair(hyper: dict, seed: int = 0):
    ref = HardAttentionReference(hyper["D"], hyper["E"], hyper["att"])
    return h.paired("hard", hyper, ref, from_compiled, seed=seed)


def _inputs(hyper: dict, shape: tuple[int, int], seed: int) -> list[torch.Tensor]:
    n, length = shape
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, length, hyper["D"], generator=gen),
            torch.randn(n, hyper["E"], generator=gen)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_reference_in_eval_mode(hyper, shape):
    m, ref = _pair(hyper)
    m.eval()
    xs = _inputs(hyper, shape, seed=1)
    with torch.no_grad():
        y, att = m(*xs, return_attention=True)
        want_y, want_alpha = ref(*xs)
    torch.testing.assert_close(y, want_y, **TOL)
    torch.testing.assert_close(att["alpha"], want_alpha, **TOL)
    torch.testing.assert_close(att["alpha"].sum(1), torch.ones(shape[0]), **TOL)


@pytest.mark.parametrize("hyper", CASES)
def test_backward_matches_reference(hyper):
    """Gradients of the expectation branch (float64): what REINFORCE's half-batch uses."""
    m, ref = _pair(hyper, seed=2)
    m.double()
    ref.double()
    ref.load_state_dict(from_compiled(m.state_dict()))  # b_att summed in float64
    xs = [x.double().requires_grad_() for x in _inputs(hyper, (3, 7), seed=3)]
    y_m, att = m(*xs, return_attention=True)
    y_ref, alpha_ref = ref(*xs)
    torch.testing.assert_close(y_m, y_ref, rtol=1e-10, atol=1e-12)
    g, ga = torch.randn_like(y_m), torch.randn_like(alpha_ref)
    loss_m = (y_m * g).sum() + (att["alpha"] * ga).sum()
    loss_ref = (y_ref * g).sum() + (alpha_ref * ga).sum()
    gm = torch.autograd.grad(loss_m, xs)
    gr = torch.autograd.grad(loss_ref, xs)
    for a, b in zip(gm, gr, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    # parameters: b_att's gradient is shared by the two compiled biases
    pm = dict(m.named_parameters())
    grads = torch.autograd.grad((m(*xs) * g).sum(), list(pm.values()))
    by_name = dict(zip(pm, grads, strict=True))
    ref_grads = dict(zip(dict(ref.named_parameters()),
                         torch.autograd.grad((ref(*xs)[0] * g).sum(), list(ref.parameters())),
                         strict=True))
    torch.testing.assert_close(by_name["encoder_att.weight"].t(), ref_grads["Wc_att"])
    torch.testing.assert_close(by_name["decoder_att.weight"].t(), ref_grads["Wd_att"])
    torch.testing.assert_close(by_name["encoder_att.bias"], ref_grads["b_att"])
    torch.testing.assert_close(by_name["decoder_att.bias"], ref_grads["b_att"])
    torch.testing.assert_close(by_name["full_att_weight"], ref_grads["U_att"][:, 0])


@pytest.mark.parametrize("hyper", CASES)
def test_sampling_outside_the_block_matches_capgen(hyper):
    """A caller samples s ~ Multinoulli(alpha) and forms sum_i s_i a_i; with capgen's mask
    (1 for sampled sequences, 0 for the expectation) the contexts agree row by row."""
    m, ref = _pair(hyper, seed=4)
    m.eval()
    a, hid = _inputs(hyper, (4, 11), seed=5)
    with torch.no_grad():
        y, att = m(a, hid, return_attention=True)
        alpha = att["alpha"]
        idx = torch.multinomial(alpha, 1, generator=torch.Generator().manual_seed(6))[:, 0]
        s = torch.nn.functional.one_hot(idx, alpha.shape[1]).to(alpha.dtype)
        mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
        z_caller = torch.where(mask[:, None] > 0, (s[:, :, None] * a).sum(1), y)
        z_ref, _ = ref(a, hid, h_sampling_mask=mask, sample=s)
    torch.testing.assert_close(z_caller, z_ref, **TOL)
    torch.testing.assert_close(z_caller[0], a[0, idx[0]], **TOL)


def test_soft_attention_weights_load_unchanged():
    """Same f_att and names as specs/softatt.attn: its state_dict drives this block."""
    hyper = {"D": 24, "E": 16, "att": 12}
    soft = h.randomize_(h.compile_spec("softatt", hyper), 7)
    hard = h.compile_spec("hard", hyper)
    hard.load_state_dict(soft.state_dict(), strict=True)
    xs = _inputs(hyper, (2, 9), seed=8)
    with torch.no_grad():
        torch.testing.assert_close(hard.eval()(*xs), soft.eval()(*xs))
