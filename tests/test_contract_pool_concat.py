"""contract, avg_pool/max_pool and concat beyond their samples: run-time sizes, errors, costs."""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import attncc
from attncc.backends.torch_module import build_module
from attncc.ir import single_op
from attncc.ops import get_op
from attncc.ops.base import OpError
from attncc.passes import run_pipeline

NON_LOCAL = """block NonLocal(x: [N, C, H, W], r: int = 2, sub: int = 2) {
  dim D = C // r
  squeeze   q  = conv(x, C -> D, over=H W, k=1)
            xs = max_pool(x, over=H W, k=sub, to=Hs Ws)
            k_ = conv(xs, C -> D, over=Hs Ws, k=1)
            v  = conv(xs, C -> D, over=Hs Ws, k=1)
  excite    a = softmax(contract(q, k_, over=D) / sqrt(D), over=Hs Ws)
  aggregate o = contract(a, v, over=Hs Ws)
            y = x + conv(o, D -> C, over=H W, k=1)
  attention a
  return y
}"""


def test_non_local_with_run_time_grid_agrees_at_two_sizes(tmp_path):
    path = tmp_path / "nl.attn"
    path.write_text(NON_LOCAL)
    module = h.randomize_(attncc.compile(path, C=8), 0)
    ir = module.ir
    assert ir.dims["Hs"] is None and ir.dims["Ws"] is None  # never frozen
    for hw in [(6, 8), (9, 5)]:
        x = np.random.default_rng(1).standard_normal((2, 8, *hw), dtype=np.float32)
        res = h.assert_backends_agree(module, {"x": x}, label=f"non-local-{hw}")
        assert res["numpy"]["attention.a"].shape == (2, *hw, hw[0] // 2, hw[1] // 2)


def test_pool_output_size_follows_a_later_pinned_input(tmp_path):
    # W gets a size only from a later statement; the pooled Ws must follow, not clash
    path = tmp_path / "pin.attn"
    path.write_text("""block P(x: [N, C, H, W]) {
  xs = max_pool(x, over=H W, k=2, to=Hs Ws)
  z = dense(x, W -> 3)
  return z, xs
}""")
    module = attncc.compile(path, shapes={"x": (2, 4, 6, 8)})
    assert module.ir.dims["W"] == 8 and module.ir.dims["Ws"] == 4
    assert module.ir.dims["Hs"] is None


@pytest.mark.parametrize("sizes", [{"N": 2, "C": 3}, {"N": 2, "C": 3, "W": 4}])
def test_concat_of_run_time_dims(sizes):
    ir = single_op(get_op("concat"), [("N", "C", "W"), ("W", "C", "N")],
                   {"along": ("W",), "as": "V"}, sizes)
    run_pipeline(ir)
    assert ir.dims["V"] == (8 if "W" in sizes else None)
    module = h.randomize_(build_module(ir), 0)
    inputs = h.make_inputs(ir, {"W": 5}, seed=0)
    res = h.assert_backends_agree(module, inputs, label="concat-run-time")
    w = sizes.get("W", 5)
    assert res["numpy"]["y"].shape == (2, 3, 2 * w)


@pytest.mark.parametrize("kind", ["avg_pool", "max_pool"])
def test_pool_with_run_time_dims_agrees(kind):
    ir = single_op(get_op(kind), [("N", "C", "T")],
                   {"over": ("T",), "k": 3, "stride": 2, "padding": 1, "to": ("U",)}, {"C": 3})
    run_pipeline(ir)
    assert ir.dims["U"] is None
    module = h.randomize_(build_module(ir), 0)
    for t in (7, 10):
        inputs = h.make_inputs(ir, {"N": 2, "T": t}, seed=t)
        res = h.assert_backends_agree(module, inputs, label=f"{kind}-T{t}")
        assert res["numpy"]["y"].shape == (2, 3, (t + 2 - 3) // 2 + 1)


def test_avg_pool_leaves_padding_out_of_the_mean():
    ir = single_op(get_op("avg_pool"), [("N", "T")],
                   {"over": ("T",), "k": 3, "stride": 1, "padding": 1}, {"N": 1, "T": 3})
    run_pipeline(ir)
    from attncc.backends import numpy_ref

    y = numpy_ref.run(ir, {"x": np.array([[3.0, 6.0, 9.0]], np.float32)}, {})["y"]
    np.testing.assert_allclose(y, [[4.5, 6.0, 7.5]])


@pytest.mark.parametrize(("op", "inputs", "attrs", "arg", "message"), [
    pytest.param("contract", [("N", "C"), ("N", "D")], {"over": ("C",)}, "over",
                 r"sums over `C`, which `b` \[N, D\] lacks", id="contract-missing"),
    pytest.param("contract", [("N", "C"), ("N", "C")], {"over": ()}, "over",
                 "at least one dim", id="contract-empty"),
    pytest.param("max_pool", [("N", "C", "H")], {"over": ("H",), "k": 2}, "to",
                 "need new names", id="pool-needs-to"),
    pytest.param("max_pool", [("N", "C", "H")], {"over": ("H",), "k": 2, "to": ("C",)}, "to",
                 "two dims named `C`", id="pool-to-clash"),
    pytest.param("avg_pool", [("N", "C", "H")], {"over": ("H",), "k": 3, "padding": 2,
                                                  "to": ("G",)}, "padding",
                 "more than half", id="pool-padding"),
    pytest.param("avg_pool", [("N", "C", "T", "H")], {"over": ("H",), "k": 3, "to": ("G",)},
                 "over", "one or two dims besides", id="pool-too-many-dims"),
    pytest.param("avg_pool", [("N", "C", "H")], {"over": ("H",), "k": 9, "to": ("G",)}, "k",
                 "larger than `H`", id="pool-window-too-large"),
    pytest.param("concat", [("N", "C"), ("N", "H")], {"along": ("C",), "as": "E"}, "along",
                 "input 2 has dims", id="concat-missing-dim"),
    pytest.param("concat", [("N", "C", "W"), ("N", "D", "H")], {"along": ("C", "D"), "as": "E"},
                 "along", "differ only in the joined dim", id="concat-other-dims"),
    pytest.param("concat", [("N", "C"), ("N", "C")], {"along": ("C",), "as": "N"}, "as",
                 "already a dim", id="concat-as-taken"),
])
def test_errors_name_the_argument(op, inputs, attrs, arg, message):
    with pytest.raises(OpError, match=message) as info:
        single_op(get_op(op), inputs, attrs, {"N": 2, "C": 6, "D": 4, "H": 5, "T": 3})
    assert info.value.arg == arg


@pytest.mark.parametrize(("inputs", "over", "sizes", "macs"), [
    pytest.param([("N", "D", "H", "W"), ("N", "D", "P", "Q")], ("D",),
                 {"N": 2, "D": 4, "H": 5, "W": 7, "P": 3, "Q": 6}, 2 * 5 * 7 * 3 * 6 * 4,
                 id="affinity"),
    pytest.param([("N", "H", "W", "P", "Q"), ("N", "D", "P", "Q")], ("P", "Q"),
                 {"N": 2, "D": 4, "H": 5, "W": 7, "P": 3, "Q": 6}, 2 * 5 * 7 * 4 * 3 * 6,
                 id="aggregate"),
    pytest.param([("C", "T"), ("D", "C")], ("C",), {"C": 6, "T": 3, "D": 4}, 3 * 4 * 6,
                 id="matmul"),
])
def test_contract_flops_are_twice_the_macs(inputs, over, sizes, macs):
    ir = single_op(get_op("contract"), inputs, {"over": over}, sizes)
    run_pipeline(ir)
    assert ir.cost(ir.outputs[0][1]).flops == 2 * macs
    module = build_module(ir).eval()
    args = [torch.from_numpy(x) for x in h.make_inputs(ir, {}, seed=0).values()]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    assert counter.get_total_flops() == 2 * macs
