"""Compiled FcaNet against a module written from the authors' code (cfzd/FcaNet, layer.py).

The DCT basis is a compile-time constant: the compiled module's `dct_layer.weight` buffer,
computed by the generated `reset_parameters`, must equal the official `get_dct_filter` bit for
bit. The eval comparisons load the compiled state_dict into the reference by name with
strict=True (the keys are the official ones), once with the true basis and random FC weights
and once with everything randomised.
"""

from __future__ import annotations

import math

import _harness as h
import numpy as np
import pytest
import torch
from paper_refs.fcanet import FcaNetReference

RTOL, ATOL = 1e-4, 1e-5
METHODS = {0: "top", 1: "low", 2: "bot"}

# the two settings of tests/test_specs.py, then other tiles (the 7-space indices scale by
# H // 7, W // 7), selections and frequency counts
CASES = [
    pytest.param({"C": 32, "r": 4, "H": 7, "W": 5}, id="C32-r4-7x5"),
    pytest.param({"C": 48, "r": 8, "H": 7, "W": 5}, id="C48-r8-7x5"),
    pytest.param({"C": 32, "r": 4, "H": 14, "W": 9}, id="C32-r4-14x9"),
    pytest.param({"C": 64, "r": 16, "H": 7, "W": 7, "freq": 1}, id="C64-low16-7x7"),
    pytest.param({"C": 48, "r": 4, "H": 21, "W": 14, "freq": 2}, id="C48-bot16-21x14"),
    pytest.param({"C": 40, "r": 5, "H": 7, "W": 11, "n": 8}, id="C40-top8-7x11"),
    pytest.param({"C": 64, "r": 8, "H": 14, "W": 14, "freq": 1, "n": 32},
                 id="C64-low32-14x14"),
]


def reference(hp: dict) -> FcaNetReference:
    method = f"{METHODS[hp.get('freq', 0)]}{hp.get('n', 16)}"
    return FcaNetReference(hp["C"], hp["H"], hp["W"], reduction=hp["r"], freq_sel_method=method)


@pytest.mark.parametrize("hp", CASES)
def test_dct_buffer_equals_the_official_filter(hp):
    m = h.compile_spec("fcanet", hp)
    ref = reference(hp)
    assert torch.equal(m.state_dict()["dct_layer.weight"], ref.dct_layer.weight)
    # a buffer, not a parameter, and reset_parameters recomputes it after any overwrite
    assert "dct_layer.weight" not in dict(m.named_parameters())
    h.randomize_(m, 3)
    m.reset_parameters()
    assert torch.equal(m.dct_layer.weight, ref.dct_layer.weight)


@pytest.mark.parametrize("randomize_basis", [False, True], ids=["dct", "random-basis"])
@pytest.mark.parametrize("hp", CASES)
def test_matches_the_authors_module(hp, randomize_basis):
    m = h.compile_spec("fcanet", hp)
    basis = m.dct_layer.weight.clone()
    h.randomize_(m, 7)
    if not randomize_basis:
        m.dct_layer.weight.copy_(basis)
    ref = reference(hp)
    ref.load_state_dict(m.state_dict(), strict=True)
    m.eval()
    ref.eval()
    for n in (1, 3):
        x = torch.randn(n, hp["C"], hp["H"], hp["W"])
        with torch.no_grad():
            torch.testing.assert_close(m(x), ref(x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("preset", "freq"), [("top16", 0), ("low16", 1), ("bot16", 2)])
def test_presets_select_the_official_tables(preset, freq):
    import attncc

    hp = {"C": 32, "r": 4, "H": 7, "W": 5}
    m = attncc.compile(h.SPECS_DIR / "fcanet.attn", preset=preset, seed=0, **hp)
    ref = reference({**hp, "freq": freq})
    assert torch.equal(m.dct_layer.weight, ref.dct_layer.weight)


def test_known_dct_values():
    # 7 x 7 top16: group i (C // 16 channels) holds B_{u_i, v_i}; (u, v) = (0, 0), (0, 1),
    # (6, 0), (0, 5) for the first four groups
    w = h.compile_spec("fcanet", {"C": 32, "r": 4, "H": 7, "W": 7}).dct_layer.weight.double()
    # DC: a constant 1 / sqrt(HW) = 1/7
    torch.testing.assert_close(w[0], torch.full((7, 7), 1 / 7, dtype=torch.float64))
    assert torch.equal(w[0], w[1])  # two channels per frequency
    # (0, 1): constant along H, sqrt(2/7) cos(pi (j + 1/2) / 7) / sqrt(7) along W
    col = [math.sqrt(2 / 7) * math.cos(math.pi * (j + 0.5) / 7) / math.sqrt(7) for j in range(7)]
    torch.testing.assert_close(w[2], torch.tensor([col] * 7, dtype=torch.float64))
    assert abs(w[2, 0, 0].item() - 0.1969652) < 1e-6  # sqrt(2)/7 cos(pi/14)
    assert w[2, :, 3].abs().max() < 1e-7  # cos(pi/2) = 0 in the middle column
    # (6, 0): alternating sign along H
    assert w[4, 0, 0] > 0 > w[4, 1, 0] and abs(w[4, 0, 0].item() - 0.0449560) < 1e-6
    # (0, 5): the filter is odd-symmetric along W for an odd frequency
    torch.testing.assert_close(w[6].flip(1), -w[6])


def test_distinct_frequencies_are_orthonormal():
    # low32 on a 7 x 7 tile: 32 distinct DCT-II basis images, one channel each
    w = h.compile_spec("fcanet", {"C": 32, "r": 4, "H": 7, "W": 7, "freq": 1, "n": 32})
    b = w.dct_layer.weight.double().reshape(32, -1)
    np.testing.assert_allclose((b @ b.T).numpy(), np.eye(32), atol=1e-6)


def test_the_map_size_is_fixed():
    m = h.compile_spec("fcanet", {"C": 32, "r": 4, "H": 7, "W": 5})
    assert m(torch.randn(2, 32, 7, 5)).shape == (2, 32, 7, 5)
    # no adaptive pooling to the tile, unlike the official code: the module says so
    with pytest.raises(ValueError, match=r"input `x` must be \[N, C=32, H=7, W=5\]"):
        m(torch.randn(2, 32, 7, 9))
