"""The local-window ops: `unfold` against torch's own im2col, its diagnostics, `rel_grid`'s
values and `coords`' run-time grid (tests/test_ops.py runs every sample three ways)."""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias

import attncc
from attncc.backends import numpy_ref
from attncc.diagnostics import AttnccError


def _block(body: str, head: str = "x: [N, C, H, W]") -> str:
    return f"block B({head}) {{\n{body}\n}}\n"


WINDOW_2D = _block("  dim Kh = 5\n  dim Kw = 3\n"
                   "  y = unfold(x, over=H W, as=Kh Kw, dilation=2)\n  return y")


@pytest.mark.parametrize("hw", [(6, 9), (2, 11)], ids=["h6_w9", "h2_w11"])
def test_matches_torch_im2col(hw):
    """[N, C, H, W, Kh, Kw] against F.unfold (zero padding d(k-1)/2, dilation 2)."""
    m = attncc.compile(WINDOW_2D, C=4)
    x = torch.randn(3, 4, *hw, generator=torch.Generator().manual_seed(0))
    cols = F.unfold(x, (5, 3), dilation=2, padding=(4, 2))          # [N, C*5*3, H*W]
    want = cols.view(3, 4, 5, 3, *hw).permute(0, 1, 4, 5, 2, 3)
    torch.testing.assert_close(m(x), want, rtol=0, atol=0)
    h.assert_backends_agree(m, {"x": x.numpy()}, label=f"unfold at {hw}")


def test_temporal_kernel_over_one_dim():
    text = _block("  y = unfold(x, over=T, k=3, as=K)\n  return y", "x: [N, C, T]")
    m = attncc.compile(text, C=4)
    x = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    y = h.run_numpy(m, {"x": x})["y"]
    assert y.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(y[0, 0, 0], [0, 0, 1])            # zero before the start
    np.testing.assert_array_equal(y[0, 0, 4], [3, 4, 0])            # and after the end
    h.assert_backends_agree(m, {"x": x}, label="temporal unfold")


def test_reflect_mirrors_without_repeating_the_edge():
    text = _block('  y = unfold(x, over=T, k=5, as=K, pad="reflect")\n  return y',
                  "x: [N, T]")
    m = attncc.compile(text)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    y = h.assert_backends_agree(m, {"x": x}, label="reflect")["numpy"]["y"]
    np.testing.assert_array_equal(y[0, 0], [2, 1, 0, 1, 2])
    np.testing.assert_array_equal(y[1, 5], [9, 10, 11, 10, 9])


def test_reflect_needs_a_map_larger_than_the_halo():
    text = _block('  y = unfold(x, over=T, k=5, as=K, pad="reflect")\n  return y',
                  "x: [N, T]")
    m = attncc.compile(text)
    x = np.zeros((1, 2), dtype=np.float32)
    with pytest.raises(Exception, match="reflect"):
        numpy_ref.run(m.ir, {"x": x}, {})
    with pytest.raises(RuntimeError):
        m(torch.from_numpy(x))


@pytest.mark.parametrize(
    ("body", "message", "column"),
    [
        pytest.param("y = unfold(x, over=H W, k=4, as=Kh Kw)", "must have an odd size", 27,
                     id="even-k"),
        pytest.param("y = unfold(x, over=H W, as=Kh Kw)", "cannot tell the size of the window "
                     "dim `Kh`", 27, id="no-size"),
        pytest.param("y = unfold(x, over=H W, k=3, as=K)", "`as` names 1 dim for the 2 dims",
                     32, id="as-count"),
        pytest.param("y = unfold(x, over=H W, k=3, as=C Kw)", "two dims named `C`", 32,
                     id="as-clash"),
        pytest.param("y = unfold(x, over=H T, k=3, as=Kh Kw)", "runs over `T`", 17,
                     id="over-missing"),
        pytest.param('y = unfold(x, over=H, k=3, as=K, pad="edge")', '"zeros" or "reflect"', 40,
                     id="bad-pad"),
    ],
)
def test_unfold_diagnostics(body, message, column):
    with pytest.raises(AttnccError) as err:
        attncc.check(_block(f"  {body}\n  return y"), C=4)
    text = str(err.value)
    assert message in text
    assert f"<string>:2:{column}:" in text, text


def test_declared_window_dims_must_be_odd():
    body = "  dim Kh = 4\n  y = unfold(x, over=H, as=Kh)\n  return y"
    with pytest.raises(AttnccError) as err:
        attncc.check(_block(body), C=4)
    assert "odd size to be centred, but `Kh` is 4" in str(err.value)
    assert "<string>:3:25:" in str(err.value)           # at `as=Kh`


def test_declared_window_dim_must_agree_with_k():
    body = "  dim Kh = 5\n  y = unfold(x, over=H, k=3, as=Kh)\n  return y"
    with pytest.raises(AttnccError, match="already has size 5"):
        attncc.check(_block(body), C=4)


def test_cost_is_the_output_copy():
    ir = attncc.check(WINDOW_2D, C=4)
    y = ir.outputs[0][1]
    cost = ir.cost(y, bind={"N": 2, "H": 6, "W": 9})
    assert cost.flops == 0
    assert cost.bytes_moved == 4 * (2 * 4 * 6 * 9) * (1 + 15)


def test_rel_grid_is_the_centred_offsets():
    text = _block("  dim Kh = 3\n  dim Kw = 5\n  g = rel_grid(over=Kh Kw, as=P, dilation=2)\n"
                  "  return x * sum(g, over=P Kh Kw)")
    m = attncc.compile(text, C=4)
    g = m.state_dict()["g.weight"]
    assert g.shape == (2, 3, 5) and "g.weight" not in dict(m.named_parameters())
    torch.testing.assert_close(g[0, :, 0], torch.tensor([-2.0, 0.0, 2.0]))
    torch.testing.assert_close(g[1, 0], torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0]))


def test_rel_grid_needs_known_window_sizes():
    with pytest.raises(AttnccError, match="rel_grid's offsets needs the size of `H`"):
        attncc.check(_block("  g = rel_grid(over=H W, as=P)\n  return g"), C=4)


@pytest.mark.parametrize("hw", [(1, 6), (5, 2)], ids=["h1_w6", "h5_w2"])
def test_coords_is_torch_linspace(hw):
    text = _block("  g = coords(x, over=W H, as=P, keep=N)\n  return g")
    m = attncc.compile(text, C=4)
    x = np.zeros((3, 4, *hw), dtype=np.float32)
    got = h.assert_backends_agree(m, {"x": x}, label=f"coords at {hw}")["numpy"]["g"]
    assert got.shape == (3, 2, *hw)
    lw = torch.linspace(-1, 1, hw[1]).expand(hw)
    lh = torch.linspace(-1, 1, hw[0])[:, None].expand(hw)
    np.testing.assert_allclose(got[2, 0], lw.numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(got[0, 1], lh.numpy(), rtol=0, atol=1e-7)
