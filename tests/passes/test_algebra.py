"""The algebra pass: sums over stacks and reductions of sums, with equal outputs before/after."""

from __future__ import annotations

import numpy as np
import pytest

from attncc.passes import run_pipeline
from attncc.passes.algebra import algebra

# (spec, ops with fewer nodes after the pass, ops with more)
FIRES = [
    pytest.param("""block B(x: [N, C, H, W]) {
  dim B = 3
  u = stack(relu(x), sigmoid(x), tanh(x), as=B)
  return sum(u, over=B)
}""", {"stack", "sum"}, {"add"}, id="sum-of-stack"),
    pytest.param("""block B(x: [N, C, H, W]) {
  dim B = 2
  u = stack(relu(x), sigmoid(x), as=B)
  a = softmax(stack(mean(x, over=H W), max(x, over=H W), as=B), over=B)
  return sum(a * u, over=B)
}""", {"stack", "sum"}, {"pick", "mul", "add"}, id="weighted-sum-of-stack"),
    pytest.param("""block B(x: [N, C, H, W]) {
  dim B = 2
  u = stack(relu(x), sigmoid(x), as=B)
  a = softmax(stack(mean(x, over=H W), max(x, over=H W), as=B), over=B)
  return sum(u * a, over=B)
}""", {"stack", "sum"}, {"pick", "mul"}, id="weighted-sum-operands-swapped"),
    pytest.param("""block B(x: [N, C, H, W]) {
  return mean(relu(x) + sigmoid(x), over=H W)
}""", set(), {"mean"}, id="mean-of-add"),
    pytest.param("""block B(x: [N, C, H, W]) {
  return sum(relu(x) - sigmoid(x), over=C H)
}""", set(), {"sum"}, id="sum-of-sub"),
    pytest.param("""block B(x: [N, C, H, W]) {
  p = softmax(contract(x, x as [N, C, Hk, Wk], over=C), over=Hk Wk)
  u = softmax(mean(x, over=C) as [N, Hk, Wk], over=Hk Wk)
  return contract(p + u, x as [N, C, Hk, Wk], over=Hk Wk)
}""", set(), {"attend"}, id="contraction-of-sum"),  # the pairwise term then fuses
]


@pytest.mark.parametrize(("text", "fewer", "more"), FIRES)
def test_rewrite_fires_and_keeps_outputs(spec_ir, ref, nodes, text, fewer, more):
    before = spec_ir(text, disable=("algebra",))
    after = spec_ir(text, until="canonicalize")
    for op in fewer:
        assert nodes(after, op) < nodes(before, op), op
    for op in more:
        assert nodes(after, op) > nodes(before, op), op
    out_before, out_after = ref(before), ref(after)
    for k, want in out_before.items():  # terms added in another order: float rounding
        np.testing.assert_allclose(out_after[k], want, rtol=1e-5, atol=1e-6, err_msg=k)


def test_sk_keeps_no_stacked_tensor():
    from attncc.compiler import compile_ir, read_source

    ir = compile_ir(read_source("sk"), {"C": 64})
    # no [N, B, C, H, W] tensor is left anywhere: the branches are picked, weighted and added
    assert not any("B" in ir.node(n).out.dims and "H" in ir.node(n).out.dims
                   for n in ir.graph.nodes)


# rewrites that must not fire: (spec, why)
KEEPS = [
    pytest.param("""block B(x: [N, C, H, W]) {
  s = relu(x) + sigmoid(x)
  return mean(s, over=H W), s
}""", id="sum-used-twice"),
    pytest.param("""block B(x: [N, C, H, W]) {
  s = relu(x) + sigmoid(x)
  attention s
  return mean(s, over=H W)
}""", id="sum-is-an-attention-map"),
    pytest.param("""block B(x: [N, C, H, W]) {
  return mean(x + mean(x, over=H W), over=H W)
}""", id="broadcast-operand"),
    pytest.param("""block B(x: [N, C, H, W]) {
  return max(relu(x) + sigmoid(x), over=H W)
}""", id="max-is-not-linear"),
    pytest.param("""block B(x: [N, C, H, W]) {
  dim B = 2
  u = stack(relu(x), sigmoid(x), as=B)
  return sum(u, over=B C)
}""", id="sum-over-more-than-the-stack"),
    pytest.param("""block B(x: [N, C, H, W]) {
  p = softmax(contract(x, x as [N, C, Hk, Wk], over=C), over=Hk Wk)
  u = softmax(mean(x, over=C W) as [N, Hk], over=Hk)
  return contract(p + u, x as [N, C, Hk, Wk], over=Hk Wk)
}""", id="contraction-term-lacks-a-summed-dim"),
]


@pytest.mark.parametrize("text", KEEPS)
def test_rewrite_does_not_fire(spec_ir, text):
    ir = spec_ir(text, until="dce")
    assert not algebra(ir)


def test_disable_and_o0_keep_the_ir(spec_ir, nodes):
    text = """block B(x: [N, C, H, W]) {
  dim B = 2
  return sum(stack(relu(x), sigmoid(x), as=B), over=B)
}"""
    for kwargs in ({"disable": ("algebra",)}, {"opt_level": 0}):
        ir = spec_ir(text)
        run_pipeline(ir, **kwargs)
        assert nodes(ir, "stack") == 1, kwargs
