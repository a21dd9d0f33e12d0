"""Compiled EMANet unit against the authors' `EMAU`, weights moved across by name.

The compiled block holds the bases as a parameter `mu` [C, K]; the code's buffer is
[1, C, K]. `to_official` is the whole mapping (a leading 1 on `mu`), which is also how an
official checkpoint comes in (squeezed).
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.emanet import EMAUReference


def to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.unsqueeze(0) if key == "mu" else value for key, value in state.items()}


CASES = [
    pytest.param({"C": 24, "k": 8, "stages": 3}, id="C24-k8-s3"),
    pytest.param({"C": 40, "k": 12, "stages": 2}, id="C40-k12-s2"),
]
SHAPES = [pytest.param((3, 7, 9), id="n3_h7_w9"), pytest.param((1, 11, 5), id="n1_h11_w5")]


def _pair(hyper: dict, seed: int):
    ref = EMAUReference(hyper["C"], hyper["k"], stage_num=hyper["stages"])
    return h.paired("emanet", hyper, ref, to_official, seed=seed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("hyper", CASES)
def test_matches_the_authors_module(hyper, shape):
    m, ref = _pair(hyper, seed=5)
    m.eval()
    ref.eval()
    x = torch.randn(shape[0], hyper["C"], *shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hyper", CASES)
def test_gradient_reaches_what_the_code_trains(hyper):
    """As in the code, the EM iterations are cut off: conv1 and the bases get no gradient."""
    m, ref = _pair(hyper, seed=6)
    x = torch.randn(2, hyper["C"], 5, 7)
    m.train()
    m(x).sum().backward()
    ref.train()
    ref(x).sum().backward()
    got = {k for k, p in m.named_parameters() if p.grad is not None and torch.any(p.grad != 0)}
    want = {k for k, p in ref.named_parameters() if p.grad is not None}
    assert got == want == {"conv2.0.weight", "conv2.1.weight", "conv2.1.bias"}
