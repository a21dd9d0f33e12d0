"""The batch pass: a shared layer's two applications run as one, with equal outputs."""

from __future__ import annotations

import numpy as np
import pytest

from attncc.passes.batch import batch

CBAM_LIKE = """block B(x: [N, C, H, W], r: int = 2) {
  layer mlp = seq(dense(C -> C // r), relu, dense(C // r -> C))
  s = sigmoid(mlp(mean(x, over=H W)) + mlp(max(x, over=H W)))
  attention s
  return x * s
}"""


def test_cbams_mlp_runs_once(spec_ir, ref, nodes):
    before = spec_ir(CBAM_LIKE, disable=("batch",))
    after = spec_ir(CBAM_LIKE, until="canonicalize")
    assert nodes(before, "dense") == 4 and nodes(after, "dense") == 2
    assert nodes(after, "stack") == 1 and nodes(after, "pick") == 2
    want, got = ref(before), ref(after)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6, err_msg=k)


def test_a_chain_stops_where_the_applications_part(spec_ir, nodes):
    text = """block B(x: [N, C, H, W]) {
  layer fc = dense(C -> C)
  a = relu(fc(mean(x, over=H W)))
  b = sigmoid(fc(max(x, over=H W)))
  return a + b
}"""
    ir = spec_ir(text, until="canonicalize")
    assert nodes(ir, "dense") == 1 and nodes(ir, "relu") == 1 and nodes(ir, "sigmoid") == 1


@pytest.mark.parametrize("text", [
    pytest.param("""block B(x: [N, C, H, W]) {
  return dense(mean(x, over=H W), C -> C) + dense(max(x, over=H W), C -> C)
}""", id="two-layers-two-weights"),
    pytest.param("""block B(x: [N, C, H, W]) {
  layer fc = dense(C -> C)
  return fc(relu(x)) + fc(sigmoid(x))
}""", id="feature-maps-are-not-stacked"),
    pytest.param("""block B(x: [N, C, H, W]) {
  layer fc = dense(C -> C)
  return fc(fc(mean(x, over=H W)))
}""", id="one-feeds-the-other"),
])
def test_does_not_fire(spec_ir, text):
    ir = spec_ir(text, until="dce")
    assert not batch(ir)
