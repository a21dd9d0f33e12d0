"""infer-shapes alone: agrees with elaboration, repairs stale types, reports rule failures."""

from __future__ import annotations

import pytest

from attncc.diagnostics import ShapeError
from attncc.dims import TensorType
from attncc.passes.infer_shapes import infer_shapes

SPEC = """block B(x: [N, C, H, W], r: int = 2) {
  squeeze z = mean(x, over=H W)
  excite  s = sigmoid(dense(relu(dense(z, C -> C // r)), C // r -> C))
  gate    m = max(x, over=C)
  attention s
  return z * s, m
}"""


def _by_name(ir, name):
    (n,) = [n for n in ir.graph.nodes if ir.node(n).name == name]
    return n


def test_agrees_with_elaboration(spec_ir, ref, same_outputs, nodes):
    ir = spec_ir(SPEC)
    types = {n: ir.node(n).out for n in ir.graph.nodes}
    before, n_before = ref(ir), nodes(ir)
    assert infer_shapes(ir) is False
    assert nodes(ir) == n_before
    assert {n: ir.node(n).out for n in ir.graph.nodes} == types
    ir.lint()
    same_outputs(before, ref(ir))


@pytest.mark.parametrize(("name", "stale"), [
    pytest.param("z", TensorType(("N", "C", "H")), id="reduction"),
    pytest.param("s", TensorType(("C", "N")), id="permuted"),
    pytest.param("m", TensorType(("N", "H", "W"), frozenset({"H"})), id="broadcast-flag"),
])
def test_repairs_a_stale_type(spec_ir, ref, same_outputs, nodes, name, stale):
    ir = spec_ir(SPEC)
    before = ref(ir)
    n = _by_name(ir, name)
    right = ir.node(n).out
    ir.node(n).out = stale
    n_before = nodes(ir)
    assert infer_shapes(ir) is True
    assert nodes(ir) == n_before
    assert ir.node(n).out == right
    ir.lint()
    same_outputs(before, ref(ir))


def test_changed_attribute_flows_downstream(spec_ir):
    ir = spec_ir("""block B(x: [N, C, H, W]) {
  z = mean(x, over=H W)
  s = sigmoid(z)
  return s
}""")
    ir.node(_by_name(ir, "z")).attrs["over"] = ("H",)
    assert infer_shapes(ir) is True
    assert ir.node(_by_name(ir, "z")).out == TensorType(("N", "C", "W"))
    assert ir.node(_by_name(ir, "s")).out == TensorType(("N", "C", "W"))


def test_broken_rule_is_a_shape_error_at_the_node(spec_ir):
    ir = spec_ir(SPEC)
    n = _by_name(ir, "m")
    ir.node(n).attrs["over"] = ("Q",)
    message = r"max reduces `Q` but its input has dims \[N, C, H, W\]"
    with pytest.raises(ShapeError, match=message) as info:
        infer_shapes(ir)
    assert info.value.diagnostics[0].span == ir.node(n).span
    assert str(info.value.diagnostics[0].span) == "<string>:4:15"  # the `max(` call
