"""validate alone: a sound IR passes untouched; each broken invariant is an InternalError."""

from __future__ import annotations

import pytest

from attncc.diagnostics import InternalError
from attncc.dims import TensorType
from attncc.ir import IR, Node
from attncc.passes.validate import validate

SPEC = """block B(x: [N, C, H, W], r: int = 2) {
  z = mean(x, over=H W)
  s = sigmoid(dense(z, C -> C // r))
  return s
}"""


def _by_op(ir: IR, op: str) -> int:
    (n,) = [n for n in ir.graph.nodes if ir.node(n).op == op]
    return n


def test_sound_ir_passes_unchanged(spec_ir, ref, same_outputs, nodes):
    ir = spec_ir(SPEC)
    before, n_before, dump = ref(ir), nodes(ir), ir.dump()
    assert validate(ir) is False
    assert nodes(ir) == n_before
    assert ir.dump() == dump
    ir.lint()
    same_outputs(before, ref(ir))


def test_sound_ir_after_the_pipeline_passes(spec_ir):
    ir = spec_ir("block B(x: [N, C, H, W], s: [N, C]) { return stack(x * s, x, as=S) }",
                 until="canonicalize")
    assert validate(ir) is False


# each breaks one invariant of the SPEC's IR, and names the message expected
def _unknown_op(ir):
    ir.node(_by_op(ir, "sigmoid")).op = "sigmod"


def _too_many_tensors(ir):
    ir.graph.add_edge(ir.inputs[0], _by_op(ir, "sigmoid"), key=1)


def _param_in_tensor_slot(ir):
    d = _by_op(ir, "dense")
    ir.set_input(d, 0, ir.inputs_of(d)[2])


def _tensor_in_param_slot(ir):
    d = _by_op(ir, "dense")
    ir.set_input(d, 2, ir.inputs[0])


def _unknown_attribute(ir):
    ir.node(_by_op(ir, "mean")).attrs["axis"] = 1


def _missing_attribute(ir):
    del ir.node(_by_op(ir, "mean")).attrs["over"]


def _cycle(ir):
    ir.graph.add_edge(_by_op(ir, "sigmoid"), _by_op(ir, "mean"), key=1)


def _slot_gap(ir):
    s = _by_op(ir, "sigmoid")
    src = ir.inputs_of(s)[0]
    ir.graph.remove_edge(src, s, key=0)
    ir.graph.add_edge(src, s, key=1)


def _dangling_output(ir):
    ir.outputs.append(("ghost", 999))


def _input_with_inputs(ir):
    ir.graph.add_edge(ir.params()[0], ir.inputs[0], key=0)


def _param_without_spec(ir):
    ir.node(ir.params()[0]).param = None


def _block_input_not_an_input(ir):
    ir.inputs.append(ir.add(Node("relu", {}, TensorType(("N",)), "q"), [ir.inputs[0]]))


BROKEN = [
    pytest.param(_unknown_op, "unknown op `sigmod`", id="unknown-op"),
    pytest.param(_too_many_tensors, r"\(sigmoid\) has 2 tensor inputs, expected 1",
                 id="too-many-tensors"),
    pytest.param(_param_in_tensor_slot, "mixes tensors and parameters", id="param-as-tensor"),
    pytest.param(_tensor_in_param_slot, "mixes tensors and parameters", id="tensor-as-param"),
    pytest.param(_unknown_attribute, r"unknown \['axis'\]", id="unknown-attribute"),
    pytest.param(_missing_attribute, r"missing \['over'\]", id="missing-attribute"),
    pytest.param(_cycle, "has a cycle", id="cycle"),
    pytest.param(_slot_gap, r"input slots \[1\]", id="slot-gap"),
    pytest.param(_dangling_output, "an output refers to a removed node", id="dangling-output"),
    pytest.param(_input_with_inputs, "input node `x` has inputs", id="input-with-inputs"),
    pytest.param(_param_without_spec, "param=None", id="param-without-spec"),
    pytest.param(_block_input_not_an_input, "block input `q` is a `relu` node",
                 id="block-input-not-an-input"),
]


@pytest.mark.parametrize(("breaks", "message"), BROKEN)
def test_broken_ir_is_an_internal_error(spec_ir, breaks, message):
    ir = spec_ir(SPEC)
    validate(ir)
    breaks(ir)
    with pytest.raises(InternalError, match=message):
        validate(ir)
