"""The inplace pass: which element-wise nodes may write over an operand in inference."""

from __future__ import annotations

import pytest
import torch

from attncc.backends.torch_module import build_module


def marked(ir) -> dict[str, int]:
    return {ir.node(n).name: ir.node(n).attrs["_overwrite"] for n in ir.graph.nodes
            if "_overwrite" in ir.node(n).attrs}


# (spec, {node name: slot written over}) after the whole pipeline
CASES = [
    pytest.param("""block B(x: [N, C, H, W]) {
  s = sigmoid(relu(dense(mean(x, over=H W), C -> C)))
  return x * s
}""", {"s": 0, "s.relu": 0}, id="chain-after-dense"),
    pytest.param("""block B(x: [N, C, H, W]) {
  return relu(x)
}""", {}, id="never-the-input"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = x * 2
  return t, relu(t)
}""", {}, id="never-a-returned-tensor"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = x * 2
  attention t
  return relu(t)
}""", {}, id="never-an-attention-map"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = x * 2
  u = relu(t)
  return u + t
}""", {"B.add": 1}, id="not-while-read-later"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = x * 2
  return t * mean(t, over=H W)
}""", {"B.mul": 0}, id="the-full-operand-only"),
    pytest.param("""block B(x: [N, C, H, W]) {
  t = mean(x, over=H W)
  return x * t
}""", {}, id="a-broadcast-operand-never"),
    pytest.param("""block B(x: [N, C, H, W], r: int = 2) {
  z = mean(x, over=H W)
  s = sigmoid(dense(z, C -> C))
  return x * s, z
}""", {"s": 0}, id="reduction-returned-stays"),
]


@pytest.mark.parametrize(("text", "want"), CASES)
def test_marks(spec_ir, text, want):
    ir = spec_ir(text, until="inplace")
    got = marked(ir)
    # names of unnamed expressions vary; compare the named ones and the count
    assert len(got) == len(want), got
    for name, slot in want.items():
        if not name.startswith("B."):
            assert got.get(name) == slot, got


@pytest.mark.parametrize(("text", "want"), CASES)
def test_inference_equals_autograd_and_inputs_stay(spec_ir, text, want):
    ir = spec_ir(text, until="inplace")
    m = build_module(ir, text).eval()
    x = torch.randn(2, 6, 5, 7)
    keep = x.clone()
    with torch.no_grad():
        fast = m(x, return_attention=True)
    slow = m(x, return_attention=True)
    assert torch.equal(x, keep)
    flat = [*(fast[0] if isinstance(fast[0], tuple) else (fast[0],)), *fast[1].values()]
    ref = [*(slow[0] if isinstance(slow[0], tuple) else (slow[0],)), *slow[1].values()]
    for a, b in zip(flat, ref, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    if want:
        assert "_inplace = not (torch.is_grad_enabled()" in m.source


def test_disabled_and_o0_write_nothing_in_place(spec_ir):
    text = CASES[0].values[0]
    for kwargs in ({"disable": ("inplace",)}, {"opt_level": 0}):
        from attncc.passes import run_pipeline

        ir = spec_ir(text)
        run_pipeline(ir, **kwargs)
        assert not marked(ir)


def test_a_square_writes_over_its_operand(spec_ir):
    ir = spec_ir("""block B(x: [N, C, H, W]) {
  d = x - mean(x, over=H W)
  return x * sigmoid(d * d)
}""", until="inplace")
    mul = [n for n in ir.graph.nodes if ir.node(n).op == "mul"
           and len(set(ir.inputs_of(n))) == 1]
    assert len(mul) == 1 and ir.node(mul[0]).attrs.get("_overwrite") == 0
