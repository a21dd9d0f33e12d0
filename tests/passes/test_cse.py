"""CSE alone: merges equal pure nodes, respects layers' parameters, keeps the numbers."""

from __future__ import annotations

import pytest

from attncc.passes.cse import cse

# (spec, node-count delta): every spec runs through infer-shapes, then cse alone
CASES = [
    pytest.param("""block B(x: [N, C, H, W]) {
  a = mean(x, over=H W)
  b = mean(x, over=H W)
  return a + b
}""", -1, id="mean-twice"),
    pytest.param("""block B(x: [N, C, H, W]) {
  a = mean(x, over=H W)
  b = mean(x, over=H)
  return a + mean(b, over=W)
}""", 0, id="mean-different-dims"),
    pytest.param("""block B(x: [N, C, H, W]) {
  a = mean(x, over=H W)
  b = max(x, over=H W)
  return a + b
}""", 0, id="mean-vs-max"),
    pytest.param("""block B(x: [N, C, H, W]) {
  return sigmoid(relu(x)) * sigmoid(relu(x))
}""", -2, id="chain-twice"),
    pytest.param("""block B(x: [N, C, H, W], r: int = 2) {
  z = mean(x, over=H W)
  s = dense(z, C -> C // r) + dense(z, C -> C // r)
  return s
}""", 0, id="two-dense-layers"),
    pytest.param("""block B(x: [N, C, H, W], r: int = 2) {
  layer fc = dense(C -> C // r)
  z = mean(x, over=H W)
  s = fc(z) + fc(z)
  return s
}""", -1, id="one-dense-layer-twice"),
    pytest.param("""block B(x: [N, C, H, W], r: int = 2) {
  layer mlp = seq(dense(C -> C // r), relu, dense(C // r -> C))
  z = mean(x, over=H W)
  s = mlp(z) + mlp(z)
  attention s
  return s
}""", -3, id="shared-mlp-same-input"),
    pytest.param("""block B(x: [N, C, H, W], r: int = 2) {
  layer mlp = seq(dense(C -> C // r), relu, dense(C // r -> C))
  s = sigmoid(mlp(mean(x, over=H W)) + mlp(max(x, over=H W)))
  attention s
  return s
}""", 0, id="shared-mlp-different-inputs"),
    pytest.param("""block B(x: [N, C, H, W]) {
  layer bn = batch_norm(over=N H W)
  return bn(x) + bn(x)
}""", 0, id="stateful-layer-not-merged"),
    pytest.param("""block B(x: [N, C, H, W]) {
  p = relu(x)
  q = sigmoid(x)
  return p * q + q * p
}""", -1, id="commutative-operands-swapped"),
    pytest.param("""block B(x: [N, C, H, W]) {
  p = relu(x)
  q = sigmoid(x)
  return (p - q) * (q - p)
}""", 0, id="non-commutative-operands-swapped"),
    pytest.param("""block B(x: [N, C, H, W]) {
  a = relu(x)
  b = relu(x)
  attention a, b
  return a * b
}""", -1, id="attention-map-merged"),
]


@pytest.mark.parametrize(("text", "delta"), CASES)
def test_cse(spec_ir, ref, same_outputs, nodes, text, delta):
    ir = spec_ir(text, until="infer-shapes")
    before, n_before = ref(ir), nodes(ir)
    modified = cse(ir)
    assert modified == (delta != 0)
    assert nodes(ir) - n_before == delta
    ir.lint()
    same_outputs(before, ref(ir))


@pytest.mark.parametrize(("text", "delta"), CASES)
def test_cse_reaches_a_fixed_point_in_one_run(spec_ir, nodes, text, delta):
    ir = spec_ir(text, until="infer-shapes")
    cse(ir)
    n = nodes(ir)
    assert cse(ir) is False
    assert nodes(ir) == n


def test_merged_outputs_and_attention_point_at_the_kept_node(spec_ir):
    ir = spec_ir(CASES[-1].values[0], until="infer-shapes")
    cse(ir)
    assert ir.attention["a"] == ir.attention["b"]
    (_, y), = ir.outputs
    assert ir.inputs_of(y) == [ir.attention["a"]] * 2


def test_shared_layer_keeps_one_parameter_set(spec_ir):
    ir = spec_ir(CASES[6].values[0], until="infer-shapes")
    cse(ir)
    assert sum(1 for n in ir.graph.nodes if ir.node(n).op == "dense") == 2
    assert [ir.node(n).name for n in ir.params()] == [
        "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
