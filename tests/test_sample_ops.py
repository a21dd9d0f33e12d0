"""The sampling ops' diagnostics (affine_grid, grid_sample, deform_conv) and the two small
language additions the sampling specs use: `values(...)` parameter initialisers and the
`choose(c, a, b)` hyperparameter function.
"""

from __future__ import annotations

import pytest
import torch
from _harness import SPECS_DIR

import attncc
from attncc.diagnostics import AttnccError


def _error(body: str, **hyper) -> str:
    text = f"block B(x: [N, C, H, W], t: [N, A]) {{\n{body}\n}}\n"
    with pytest.raises(AttnccError) as err:
        attncc.check(text, **{"C": 4, "A": 6, **hyper})
    rendered = str(err.value)
    assert "Traceback" not in rendered
    return rendered


@pytest.mark.parametrize(
    ("body", "hyper", "message"),
    [
        pytest.param("  g = affine_grid(t, like=x, over=H W, as=P, transform=\"translation\")\n"
                     "  return g", {}, "a translation θ holds 2 numbers (tx, ty), but `A` has "
                     "size 6", id="affine-theta-size"),
        pytest.param("  g = affine_grid(t, over=H W, as=P)\n  return g", {},
                     "affine_grid needs the grid's size", id="affine-no-size"),
        pytest.param("  g = affine_grid(t, like=x, over=H W, as=P, height=3)\n  return g", {},
                     "`height` is not needed", id="affine-size-twice"),
        pytest.param("  g = affine_grid(t, like=x, over=H, as=P)\n  return g", {},
                     "`over` names its height and width", id="affine-1d"),
        pytest.param("  g = affine_grid(t, like=x, over=H W, as=P, levels=3)\n  return g", {},
                     "levels=3 needs a dim for the levels", id="affine-levels-dim"),
        pytest.param("  g = affine_grid(t, like=x, over=H W, as=P, scale=0)\n  return g", {},
                     "scale", id="affine-scale-range"),
        pytest.param("  g = affine_grid(t, like=x, over=Q W, as=P)\n  return g", {},
                     "has no dim `Q`", id="affine-like-dims"),
        pytest.param("  y = grid_sample(x, t, over=H W, to=H W)\n  return y", {},
                     "has no output dim `H`", id="sample-grid-dims"),
        pytest.param("  g = affine_grid(t, like=x, over=H W, as=P)\n"
                     "  y = grid_sample(x, g, over=H W, mode=\"bicubic\")\n  return y", {},
                     "bicubic", id="sample-mode"),
        pytest.param("  dim O = 9\n  o = conv(x, C -> O, over=H W, k=3)\n"
                     "  y = deform_conv(x, o, C -> C, over=H W, k=3)\n  return y", {},
                     "with k=3 the offsets need 18 channels", id="deform-offset-channels"),
        pytest.param("  dim O = 27\n  o = conv(x, C -> O, over=H W, k=3)\n"
                     "  y = deform_conv(x, o, C -> C, over=H W, k=3, modulated=true, groups=3)\n"
                     "  return y", {}, "groups=3 must divide both channel counts",
                     id="deform-groups"),
        pytest.param("  dim O = 18\n  o = conv(x, C -> O, over=H W, k=3)\n"
                     "  y = deform_conv(x, o, C -> C, over=H W, k=3, stride=2)\n  return y", {},
                     "changes the size of `H W`", id="deform-stride-needs-names"),
        pytest.param("  dim O = 18\n  o = mean(conv(x, C -> O, over=H W, k=3), over=W)\n"
                     "  y = deform_conv(x, o, C -> C, over=H W, k=3)\n  return y", {},
                     "the offsets must be [N, O, H, W]", id="deform-offset-dims"),
    ],
)
def test_sampling_diagnostics(body, hyper, message):
    assert message in _error(body, **hyper)


def test_values_initialiser_sets_every_element():
    text = """block B(x: [N, C]) {
  dim A = 6
  param b: [A] = values(1, 0, 0, 0, 1, 0)
  param m: [C, A] = values(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
  y = x * mean(m, over=A) + mean(b, over=A)
  return y
}"""
    sd = attncc.compile(text, C=2).state_dict()
    assert torch.equal(sd["b"], torch.tensor([1.0, 0, 0, 0, 1, 0]))
    assert torch.equal(sd["m"], torch.arange(1.0, 13).reshape(2, 6))


def test_values_initialiser_needs_one_number_per_element():
    text = "block B(x: [N, C]) {\n  param b: [C] = values(1, 2)\n  y = x * b\n  return y\n}\n"
    with pytest.raises(AttnccError, match=r"`values` gives 2 numbers for the 3 elements of `b`"):
        attncc.check(text, C=3)


@pytest.mark.parametrize(("modulated", "channels"), [(True, 27), (False, 18)])
def test_choose_picks_the_offset_channels(modulated, channels):
    m = attncc.compile(SPECS_DIR / "dcn.attn", C=4, out=5, modulated=modulated)
    assert m.state_dict()["conv_offset.weight"].shape == (channels, 4, 3, 3)


def test_choose_needs_a_bool_first():
    text = ("block B(x: [N, C], c: int = 1) {\n  dim D = choose(c, 3, 2)\n"
            "  y = dense(x, C -> D)\n  return y\n}\n")
    with pytest.raises(AttnccError, match="`choose` takes a bool first, got int"):
        attncc.check(text, C=3)


@pytest.mark.parametrize("preset", ["v1", "v2"])
def test_dcn_presets(preset):
    m = attncc.compile(SPECS_DIR / "dcn.attn", C=4, out=5, preset=preset)
    assert m.ir.hyper["modulated"] is (preset == "v2")
