"""`merge(x, H W -> P)` and `unmerge(x, P -> H W, like=t)`: row-major, sizes kept dynamic."""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest

import attncc
from attncc.diagnostics import AttnccError

ROUND_TRIP = """
block B(x: [N, C, H, W]) {
  p = merge(x, W H -> P)                    # [N, C, P], P = w * H + h
  y = unmerge(relu(p), P -> W H, like=x)    # [N, C, W, H]
  return x + y, p
}
"""


@pytest.mark.parametrize("shape", [(2, 6, 5, 9), (1, 6, 11, 3)], ids=["n2_h5_w9", "n1_h11_w3"])
def test_one_onnx_graph_serves_every_size(shape):
    m = attncc.compile(ROUND_TRIP, C=6)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = h.assert_backends_agree(m, {"x": x}, label=f"merge at {shape}")["ort"]
    n, c, hh, ww = shape
    np.testing.assert_array_equal(out["p"], x.transpose(0, 1, 3, 2).reshape(n, c, ww * hh))


def test_merged_dim_is_placed_at_the_first_piece():
    ir = attncc.check("block B(x: [N, H, C, W]) {\n  return merge(x, W H -> P)\n}\n", C=4)
    assert str(ir.node(ir.outputs[0][1]).out) == "[N, P, C]"


def test_merged_size_is_static_when_the_pieces_are():
    ir = attncc.check("block B(x: [N, C, H, W]) {\n  return merge(x, C H -> P)\n}\n",
                      C=4, H=5)
    assert ir.dims["P"] == 20


def test_static_pieces_need_no_witness():
    # C is static, T is inferred from P by the reshape
    text = "block B(x: [N, C, H]) {\n  p = merge(x, C H -> P)\n  return unmerge(p, P -> C T)\n}\n"
    m = attncc.compile(text, C=4)
    x = np.random.default_rng(0).standard_normal((2, 4, 7)).astype(np.float32)
    out = h.assert_backends_agree(m, {"x": x}, label="unmerge-static")["numpy"]
    np.testing.assert_array_equal(next(iter(out.values())), x)


@pytest.mark.parametrize(
    ("stmt", "message"),
    [
        pytest.param("y = merge(x, H Q -> P)", "merge takes `Q` but its input has dims",
                     id="merge-missing-dim"),
        pytest.param("y = merge(x, H W -> C)", "merge's new dim `C` is already a dim",
                     id="merge-existing-name"),
        pytest.param("y = merge(x, H W -> P Q)", "merge makes one dim", id="merge-two-outputs"),
        pytest.param("y = merge(x, H H -> P)", "merge names a dim twice", id="merge-twice"),
        pytest.param("y = unmerge(merge(x, H W -> P), P -> H W)",
                     "unmerge cannot tell the sizes of `H W`", id="unmerge-no-witness"),
        pytest.param("y = unmerge(x, C -> A B, like=x)", "cannot tell the sizes of `A B`",
                     id="unmerge-unknown-pieces"),
        pytest.param("y = unmerge(x, H W -> P)", "unmerge cuts one dim", id="unmerge-two-src"),
        pytest.param("y = unmerge(x, Q -> A B)", "unmerge cuts `Q`", id="unmerge-missing-dim"),
        pytest.param("y = unmerge(x, C -> N H, like=x)", "two dims named `N`",
                     id="unmerge-clash"),
        pytest.param("y = merge(x)", "needs the argument `map`", id="merge-no-map"),
        pytest.param("y = merge(x, H W)", "is a dim map", id="merge-not-a-map"),
    ],
)
def test_errors_point_at_the_call(stmt, message):
    text = f"block B(x: [N, C, H, W]) {{\n  {stmt}\n  return y\n}}\n"
    with pytest.raises(AttnccError) as err:
        attncc.check(text, C=4)
    assert message in str(err.value)
    assert "<string>:2:" in str(err.value)


def test_static_pieces_must_divide_the_whole():
    text = ("block B(x: [N, C, H]) {\n  dim D = 4\n  param d: [D] = ones\n"
            "  p = merge(x, C H -> P)\n  return unmerge(p, P -> D T)\n}\n")
    assert attncc.check(text, C=3, H=4).dims["T"] == 3
    with pytest.raises(AttnccError, match="cannot cut `P` = 15 into pieces of 4 and `T`"):
        attncc.check(text, C=3, H=5)


def test_static_pieces_must_multiply_to_the_whole():
    text = "block B(x: [N, C, H]) {\n  p = merge(x, C H -> P)\n  return unmerge(p, P -> H C)\n}\n"
    ok = attncc.check(text, C=4, H=5)
    assert str(ok.node(ok.outputs[0][1]).out) == "[N, H, C]"
    bad = ("block B(x: [N, C, H]) {\n  dim D = 3\n  param d: [D] = ones\n"
           "  p = merge(x, C H -> P)\n  return unmerge(p, P -> D C)\n}\n")
    with pytest.raises(AttnccError, match=r"unmerge cuts `P` = 20 into 3 \* 4"):
        attncc.check(bad, C=4, H=5)
