"""Backends: the NumPy reference, generated PyTorch modules, and ONNX for onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attncc.ir import IR
from attncc.ops import get_op
from attncc.ops.base import Op
from attncc.passes.infer_shapes import node_attrs


@dataclass(frozen=True)
class Lowering:
    """What every backend needs of one op node: the op, its inputs and positional attributes."""

    op: Op
    tensors: list[int]
    params: dict[str, int]  # parameter name -> param node
    resolved: dict[str, Any]


def lowering(ir: IR, n: int) -> Lowering:
    nd = ir.node(n)
    op = get_op(nd.op)
    ins = ir.inputs_of(n)
    k = len(ins) - len(nd.pnames)
    tensors, pids = ins[:k], ins[k:]
    resolved = op.resolve([ir.node(i).out for i in tensors], nd.out, node_attrs(nd.attrs))
    return Lowering(op, tensors, dict(zip(nd.pnames, pids, strict=True)), resolved)
