"""DCE alone: drops what no output or attention map reads, keeps inputs, keeps the numbers."""

from __future__ import annotations

import pytest

from attncc.passes.dce import dce

# (spec, node-count delta): every spec runs through infer-shapes, then dce alone
CASES = [
    pytest.param("""block B(x: [N, C, H, W]) {
  t = relu(x)
  return x
}""", -1, id="unused-statement"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = sigmoid(relu(x))
  y = tanh(x)
  return y
}""", -2, id="unused-chain"),
    pytest.param("""block B(x: [N, C, H, W], r: int = 2) {
  z = mean(x, over=H W)
  t = dense(z, C -> C // r)
  return z
}""", -3, id="unused-dense-and-its-parameters"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = relu(x)
  attention t
  return x
}""", 0, id="attention-map-stays"),
    pytest.param("""block B(x: [N, C, H, W], g: [N, C]) {
  return relu(x)
}""", 0, id="unused-input-stays"),
    pytest.param("""block B(x: [N, C, H, W]) {
  z = mean(x, over=H W)
  return x * sigmoid(z)
}""", 0, id="all-live"),
]


@pytest.mark.parametrize(("text", "delta"), CASES)
def test_dce(spec_ir, ref, same_outputs, nodes, text, delta):
    # the whole pipeline but dce: the reference can run broadcasting ops before the pass
    ir = spec_ir(text, disable=("dce",))
    before, n_before = ref(ir), nodes(ir)
    modified = dce(ir)
    assert modified == (delta != 0)
    assert nodes(ir) - n_before == delta
    ir.lint()
    same_outputs(before, ref(ir))
    assert dce(ir) is False


def test_unused_parameters_leave_the_module(spec_ir):
    ir = spec_ir(CASES[2].values[0], until="infer-shapes")
    assert ir.parameter_count() > 0
    dce(ir)
    assert ir.params() == []
    assert ir.parameter_count() == 0
