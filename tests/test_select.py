"""argmax and take (attncc/ops/select.py): ties, int64 indices through every backend, the
gradient through take, and the diagnostics for misuse of indices."""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch

import attncc
from attncc.backends.torch_module import build_module
from attncc.diagnostics import AttnccError
from attncc.dims import TensorType
from attncc.ir import single_op
from attncc.ops import get_op
from attncc.passes import run_pipeline


def _module(op: str, inputs, attrs, sizes):
    ir = single_op(get_op(op), inputs, attrs, sizes)
    run_pipeline(ir)
    return build_module(ir)


@pytest.mark.parametrize("backend", ["numpy", "torch", "ort"])
def test_argmax_ties_go_to_the_first_index(backend):
    m = _module("argmax", [("N", "T", "C")], {"over": "T"}, {"N": 2, "T": 5, "C": 3})
    x = np.zeros((2, 5, 3), np.float32)
    x[0, [1, 3], 0] = 2.0              # tie between 1 and 3
    x[0, :, 1] = 1.0                   # all equal: 0
    x[0, [2, 4], 2] = -1.0             # the zeros at 0, 1, 3 tie: 0
    x[1, [4, 2], 0] = 7.0              # tie between 2 and 4
    x[1, 3, 1] = np.inf
    x[1, :, 2] = -np.inf               # all -inf: 0
    y = h.BACKENDS[backend](m, {"x": x})["y"]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [[1, 0, 0], [2, 3, 0]])


def test_argmax_output_is_int64_in_onnx():
    from onnx import TensorProto

    m = _module("argmax", [("N", "T", "C")], {"over": "T"}, {"N": 2, "T": 5, "C": 3})
    model = h.onnx_model(m)
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.INT64
    assert str(m.ir.node(m.ir.outputs[0][1]).out) == "[N, C] int64"


def test_take_selects_and_routes_the_gradient():
    m = _module("take", [("N", "T", "C"), TensorType(("N",), dtype="int64")], {"along": "T"},
                {"N": 3, "T": 4, "C": 5})
    x = torch.randn(3, 4, 5, requires_grad=True)
    index = torch.tensor([3, 0, 2])
    y = m(x, index)
    torch.testing.assert_close(y, x[torch.arange(3), index], rtol=0, atol=0)
    y.sum().backward()
    want = torch.zeros(3, 4, 5)
    want[torch.arange(3), index] = 1.0
    torch.testing.assert_close(x.grad, want, rtol=0, atol=0)


SPEC = "block B(x: [N, T, C], s: [N, T]) {{ {body} }}"
ERRORS = [
    pytest.param("i = argmax(s, over=T)\n y = i * 2.0\n return y",
                 "`mul` takes float tensors, but `a` is [N] int64", id="index-in-arithmetic"),
    pytest.param("y = take(x, s, along=T)\n return y",
                 "take's index must be int64 indices", id="float-index"),
    pytest.param("y = take(x, argmax(x, over=C), along=T)\n return y",
                 "has the gathered dim `T`", id="index-has-the-gathered-dim"),
    pytest.param("i = argmax(s, over=T)\n y = take(s, argmax(x, over=T), along=T)\n return y",
                 "has `C`, which x [N, T] lacks", id="index-dim-not-in-x"),
    pytest.param("y = take(x, argmax(s, over=T), along=L)\n return y",
                 "take gathers along `L`", id="along-not-in-x"),
    pytest.param("y = argmax(s, over=C)\n return y",
                 "argmax runs over `C` but its input has dims [N, T]", id="argmax-over-missing"),
    pytest.param("y = take(argmax(x, over=C), argmax(s, over=T), along=T)\n return y",
                 "`take` takes float tensors, but `x` is [N, T] int64", id="gather-from-indices"),
]


@pytest.mark.parametrize(("body", "message"), ERRORS)
def test_misuse_is_a_diagnostic(body, message):
    with pytest.raises(AttnccError) as err:
        attncc.compile(SPEC.format(body=body), C=6)
    assert message in str(err.value)
