"""Compiled coordinate attention against the authors' module, weights moved across by name.

The spec's 1-D 1×1 convolutions over the joined position dim hold the same numbers as the
official 2-D 1×1 convolutions; `to_official` is the whole mapping (names, and a trailing
kernel dim), which is also how an official checkpoint is brought into the compiled block.
"""

from __future__ import annotations

import _harness as h
import pytest
import torch
from paper_refs.coordatt import CoordAttReference

NAMES = {"f.conv": "conv1", "f.batch_norm": "bn1", "a_h": "conv_h", "a_w": "conv_w"}


def to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        layer, leaf = key.rsplit(".", 1)
        # [out, in, 1] -> [out, in, 1, 1]
        conv_2d = value.unsqueeze(-1) if leaf == "weight" and value.dim() == 3 else value
        out[f"{NAMES[layer]}.{leaf}"] = conv_2d
    return out


CASES = [
    pytest.param({"C": 24, "r": 4}, id="C24-r4-mip8"),
    pytest.param({"C": 40, "r": 2}, id="C40-r2-mip20"),
]
SHAPES = [pytest.param((3, 7, 9), id="n3_h7_w9"), pytest.param((1, 11, 5), id="n1_h11_w5")]


def _pair(hyper: dict, seed: int):
    return h.paired("coordatt", hyper, CoordAttReference(hyper["C"], r=hyper["r"]),
                    to_official, seed=seed)


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
def test_training_step_matches(hyper):
    """BN in training sees the joined H + W positions, in both."""
    m, ref = _pair(hyper, seed=6)
    m.train()
    ref.train()
    x = torch.randn(3, hyper["C"], 7, 9)
    torch.testing.assert_close(m(x), ref(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(to_official(m.state_dict()), ref.state_dict(), rtol=1e-5,
                               atol=1e-6)
