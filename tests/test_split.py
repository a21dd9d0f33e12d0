"""`a, b = split(y, L -> H W)`: pieces sized at run time by tensors that carry their dims."""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest

import attncc
from attncc.diagnostics import AttnccError

JOIN_AND_CUT = """
block B(x: [N, C, H, W]) {
  z = concat(mean(x, over=W), mean(x, over=H), along=H W, as=L)   # [N, C, H + W]
  zh, zw = split(relu(z), L -> H W)
  return x * zh * zw
}
"""


@pytest.mark.parametrize("hw", [(5, 9), (11, 3)], ids=["h5_w9", "h11_w3"])
def test_one_onnx_graph_cuts_every_size(hw):
    m = h.randomize_(attncc.compile(JOIN_AND_CUT, C=6), seed=2)
    x = np.random.default_rng(1).standard_normal((2, 6, *hw)).astype(np.float32)
    h.assert_backends_agree(m, {"x": x}, label=f"split at {hw}")


def test_pieces_are_named_after_the_targets():
    ir = attncc.check(JOIN_AND_CUT, C=6)
    names = {ir.node(n).name for n in ir.graph.nodes if ir.node(n).op == "narrow"}
    assert names == {"zh", "zw"}


@pytest.mark.parametrize(
    ("stmt", "message"),
    [
        pytest.param("a, b = split(z, L -> H W T)", "split gives 3 pieces but 2 names",
                     id="count"),
        pytest.param("a, b = split(z, L -> H Q)", "no tensor has dim `Q`", id="unknown-dim"),
        pytest.param("a, b = relu(z)", "only `split` gives several values", id="not-split"),
        pytest.param("a, b = split(z, H -> H W)", "split cuts `H`", id="dim-not-there"),
    ],
)
def test_split_errors(stmt, message):
    text = ("block B(x: [N, C, H, W, T]) {\n"
            "  z = concat(mean(x, over=W T), mean(x, over=H T), along=H W, as=L)\n"
            f"  {stmt}\n  return a\n}}\n")
    with pytest.raises(AttnccError) as err:
        attncc.check(text, C=4)
    assert message in str(err.value)
    assert "<string>:3:" in str(err.value)


def test_static_sizes_must_add_up():
    text = ("block B(x: [N, L]) {\n  dim A = 2\n  dim Bd = 3\n  param p: [A] = ones\n"
            "  param q: [Bd] = ones\n  a, b = split(x, L -> A Bd)\n  return a\n}\n")
    with pytest.raises(AttnccError, match="`L` has size 7, but the pieces add up to 5"):
        attncc.check(text, L=7)
