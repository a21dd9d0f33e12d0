"""The `timm` presets of SE and ECA against pytorch-image-models' own width and kernel rules.

The rules are transcribed from timm (timm/layers/helpers.py `make_divisible`,
timm/layers/squeeze_excite.py `SEModule`, timm/layers/eca.py `EcaModule`) so the compiled
parameter shapes can be checked at many channel counts, including the ones where the rounding
differs from the papers' rules.
"""

from __future__ import annotations

import math

import _harness as h
import pytest

import attncc
from attncc.diagnostics import AttnccError

CHANNELS = [8, 16, 24, 40, 64, 100, 120, 200, 256, 1000, 2048]


def timm_make_divisible(v: float, divisor: int = 8, min_value: int | None = None,
                        round_limit: float = 0.9) -> int:
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def timm_se_width(channels: int, rd_ratio: float = 1.0 / 16, rd_divisor: int = 8) -> int:
    return timm_make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)


def timm_eca_kernel(channels: int, gamma: float = 2, beta: float = 1) -> int:
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


def official_eca_kernel(channels: int, gamma: int = 2, b: int = 1) -> int:
    t = int(abs((math.log(channels, 2) + b) / gamma))  # BangguWu/ECANet eca_resnet.py
    return t if t % 2 else t + 1


def _state(stem: str, preset: str | None, **hyper):
    return attncc.compile(h.SPECS_DIR / f"{stem}.attn", preset=preset, seed=0,
                          **hyper).state_dict()


@pytest.mark.parametrize("C", CHANNELS)
def test_se_timm_preset_widths(C):
    state = _state("se", "timm", C=C)
    m = timm_se_width(C)
    assert state["fc1.weight"].shape == (m, C)
    assert state["fc1.bias"].shape == (m,)   # timm's SEModule: bias=True
    assert state["fc2.weight"].shape == (C, m)
    assert state["fc2.bias"].shape == (C,)


@pytest.mark.parametrize("C", [c for c in CHANNELS if c >= 16])
@pytest.mark.parametrize("preset", [None, "official"])
def test_se_default_and_official_keep_the_floor(C, preset):
    assert _state("se", preset, C=C)["fc1.weight"].shape == (C // 16, C)


def test_se_timm_rule_differs_from_the_floor_where_expected():
    """The cases the preset exists for: rounding up, the minimum 8, half-up rounding."""
    assert [timm_se_width(c) for c in (64, 200, 1000, 120)] == [8, 16, 64, 8]
    assert [c // 16 for c in (64, 200, 1000, 120)] == [4, 12, 62, 7]


@pytest.mark.parametrize("divisor", [4, 16])
def test_se_divisor_hyperparameter_follows_make_divisible(divisor):
    for C, r in [(96, 4), (200, 16), (40, 8)]:
        got = _state("se", None, C=C, r=r, divisor=divisor)["fc1.weight"].shape[0]
        assert got == timm_make_divisible(C / r, divisor, round_limit=0.0), (C, r)


def test_se_negative_divisor_is_refused():
    with pytest.raises(AttnccError, match="divisor_not_negative"):
        attncc.check(h.SPECS_DIR / "se.attn", C=64, divisor=-8)


@pytest.mark.parametrize("C", [2, 4, 7, *CHANNELS])
def test_eca_timm_preset_kernels(C):
    state = _state("eca", "timm", C=C)
    assert state["s.weight"].shape[-1] == timm_eca_kernel(C)


@pytest.mark.parametrize("C", [2, 4, 7, *CHANNELS])
@pytest.mark.parametrize("preset", [None, "official"])
def test_eca_default_and_official_kernels(C, preset):
    assert _state("eca", preset, C=C)["s.weight"].shape[-1] == official_eca_kernel(C)


def test_eca_presets_differ_below_eight_channels():
    assert [official_eca_kernel(c) for c in (2, 4, 7, 8)] == [1, 1, 1, 3]
    assert [timm_eca_kernel(c) for c in (2, 4, 7, 8)] == [3, 3, 3, 3]


def test_eca_even_floor_is_refused():
    with pytest.raises(AttnccError, match="k_min_is_odd"):
        attncc.check(h.SPECS_DIR / "eca.attn", C=64, k_min=4)


@pytest.mark.parametrize(("stem", "shown"), [("se", "divisor=8"), ("eca", "k_min=3")])
def test_check_shows_the_preset_values(stem, shown, capsys):
    from attncc.cli import main

    assert main(["check", str(h.SPECS_DIR / f"{stem}.attn"), "--preset", "timm"]) == 0
    out = capsys.readouterr().out
    assert "(preset timm)" in out
    assert shown in out
