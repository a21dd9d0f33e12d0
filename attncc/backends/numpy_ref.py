"""The NumPy reference interpreter: the oracle every other backend is tested against."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from attncc.backends import lowering
from attncc.diagnostics import InternalError, ShapeError
from attncc.ir import IR


def run(ir: IR, inputs: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray], *,
        record: bool = False) -> dict[str, np.ndarray]:
    """Evaluate the IR in float32 (inference semantics: batch norm uses running statistics).

    Returns the outputs by name, plus every attention map (`attention.<name>`) and, with
    `record=True`, every node's value by node name.
    """
    env = evaluate(ir, inputs, params)
    out = {name: env[n] for name, n in ir.outputs}
    out.update({f"attention.{name}": env[n] for name, n in ir.attention.items()})
    if record:
        out.update({ir.node(n).name: v for n, v in env.items()})
    return out


def evaluate(ir: IR, inputs: Mapping[str, np.ndarray],
             params: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Every node's value, by node id."""
    env: dict[int, np.ndarray] = {}
    by_name = {ir.node(n).name: n for n in ir.inputs}
    for name, n in by_name.items():
        if name not in inputs:
            raise ShapeError(f"missing input `{name}`")
        t = ir.node(n).out
        value = np.asarray(inputs[name], dtype=np.int64 if t.dtype == "int64" else np.float32)
        if value.ndim != t.rank:
            raise ShapeError(f"input `{name}` has {value.ndim} dims, expected {t}")
        for d, size in zip(t.dims, value.shape, strict=True):
            if ir.dims.get(d) not in (None, size):
                raise ShapeError(f"input `{name}`: dim `{d}` is {size}, expected {ir.dims[d]}")
        env[n] = value
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op == "input":
            continue
        if nd.op == "param":
            if nd.name not in params:
                raise InternalError(f"no value for parameter `{nd.name}`")
            env[n] = np.asarray(params[nd.name])
            continue
        low = lowering(ir, n)
        try:
            env[n] = low.op.numpy(*(env[i] for i in low.tensors),
                                  **{k: env[v] for k, v in low.params.items()}, **low.resolved)
        except Exception as err:  # annotate with the node; this is the oracle's own failure
            raise InternalError(
                f"while executing {nd.name} ({nd.op}) at {nd.span}: {err!r}") from err
    return env
