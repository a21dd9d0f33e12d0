"""IR -> onnx.ModelProto, built node by node with onnx.helper (never by tracing torch).

Weights come from a compiled module's state_dict, so ONNX and PyTorch compute the same
function. Dims the block does not fix (batch, spatial) become symbolic `dim_param`s.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from attncc.backends import lowering
from attncc.backends.torch_codegen import display_path
from attncc.diagnostics import ExportError
from attncc.ir import IR

OPSET = 18
# opsets a model may be exported at: every lowering is written for 18, and the operators it
# uses keep their meaning up to 21 (GridSample renames `bilinear` to `linear` at 20: the
# op reads `OnnxEmitter.opset`); 22+ is not checked against onnxruntime here
OPSETS = range(18, 22)
IR_VERSION = 10  # what onnxruntime releases of the last two years all load


class OnnxEmitter:
    """A tape over onnx.helper: collects nodes and initializers and hands out unique names."""

    def __init__(self, weights: Mapping[str, np.ndarray], opset: int = OPSET) -> None:
        import onnx.helper  # noqa: F401 - imported on first use to keep `import attncc` light

        self.opset = opset
        self.nodes: list = []
        self.initializers: dict[str, np.ndarray] = {}
        self.weights = weights
        self.prefix = "graph"
        self._count: dict[str, int] = {}
        self._consts: dict[tuple, str] = {}

    def fresh(self, base: str) -> str:
        i = self._count.get(base, 0)
        self._count[base] = i + 1
        return base if i == 0 else f"{base}_{i}"

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self.fresh(f"{self.prefix}/{op_type}")
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def const_i64(self, values) -> str:
        key = ("i64", tuple(int(v) for v in values))
        if key not in self._consts:
            name = self.fresh("const_i64_" + "_".join(str(v) for v in key[1]).replace("-", "m"))
            self.initializers[name] = np.array(key[1], dtype=np.int64)
            self._consts[key] = name
        return self._consts[key]

    def const_f32(self, value: float) -> str:
        key = ("f32", float(value))
        if key not in self._consts:
            name = self.fresh(f"const_f32_{len(self._consts)}")
            self.initializers[name] = np.array(value, dtype=np.float32)
            self._consts[key] = name
        return self._consts[key]

    def param_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.initializers[name].shape)


def build_model(ir: IR, weights: Mapping[str, np.ndarray], *, attention_outputs: bool = False,
                opset: int = OPSET, static_shapes: Mapping[str, tuple[int, ...]] | None = None):
    """Build and check the ModelProto. `weights` maps parameter names to arrays.

    `static_shapes` fixes the inputs' shapes (by input name) instead of leaving the dims the
    block does not fix symbolic; onnxruntime can then specialise the graph.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if opset not in OPSETS:
        raise ExportError(f"opset {opset} is not supported; choose one of "
                          f"{OPSETS.start}..{OPSETS.stop - 1}")
    e = OnnxEmitter(weights, opset)
    env: dict[int, str] = {}
    for n in ir.inputs:
        env[n] = ir.node(n).name
    for n in ir.params():
        name = ir.node(n).name
        if name not in weights:
            raise ExportError(f"no weight for parameter `{name}` in the state_dict")
        w = np.asarray(weights[name])
        if tuple(w.shape) != ir.node(n).param.shape:
            raise ExportError(f"weight `{name}` has shape {tuple(w.shape)}, expected "
                              f"{ir.node(n).param.shape}")
        e.initializers[name] = w.astype(np.int64 if ir.node(n).param.dtype == "int64"
                                        else np.float32)
        env[n] = name
    from attncc.backends.torch_codegen import attention_only

    skip = set() if attention_outputs else attention_only(ir)  # maps not asked for
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op in ("input", "param") or n in skip:
            continue
        low = lowering(ir, n)
        # node names carry the spec's stage and name: `excite/s/Sigmoid`
        e.prefix = f"{nd.stage}/{nd.name}" if nd.stage else nd.name
        env[n] = low.op.onnx(e, *(env[i] for i in low.tensors),
                             **{k: env[v] for k, v in low.params.items()}, **low.resolved)

    def value_info(name: str, n: int):
        # a broadcast dim has size 1 (as in ir.shape); a run-time dim stays symbolic
        t = ir.node(n).out
        shape = [1 if dim in t.bcast else d if (d := ir.dims.get(dim)) is not None else dim
                 for dim in t.dims]
        elem = TensorProto.INT64 if t.dtype == "int64" else TensorProto.FLOAT
        return helper.make_tensor_value_info(name, elem, shape)

    outputs = list(ir.outputs)
    if attention_outputs:
        outputs += [(f"attention.{k}", v) for k, v in ir.attention.items()]
    graph_outputs = []
    input_names = {ir.node(n).name for n in ir.inputs}
    for name, n in outputs:
        # outputs get their spec names; an output may not reuse an input's name
        out = f"{name}_out" if name in input_names else name
        e.nodes.append(helper.make_node("Identity", [env[n]], [out], name=f"output/{out}"))
        graph_outputs.append(value_info(out, n))
    used = {i for node in e.nodes for i in node.input}
    inits = [numpy_helper.from_array(v, k) for k, v in e.initializers.items() if k in used]
    graph_inputs = [value_info(ir.node(n).name, n) for n in ir.inputs]
    for vi in graph_inputs if static_shapes else ():
        shape = static_shapes.get(vi.name)
        if shape is None:
            raise ExportError(f"a static export needs the shape of input `{vi.name}`")
        dims = vi.type.tensor_type.shape.dim
        if len(shape) != len(dims):
            raise ExportError(f"input `{vi.name}` has {len(dims)} dims, the shape given "
                              f"{tuple(shape)} has {len(shape)}")
        for d, size in zip(dims, shape, strict=True):
            if d.HasField("dim_value") and d.dim_value != size:
                raise ExportError(f"input `{vi.name}`: the block fixes a dim at {d.dim_value}, "
                                  f"the shape given says {size}")
            d.dim_value = int(size)
    graph = helper.make_graph(e.nodes, ir.block, graph_inputs, graph_outputs,
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="attncc", ir_version=IR_VERSION)
    model.doc_string = f"{ir.block} from {display_path(ir.path)}"
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"the ONNX model failed onnx.checker: {err}") from None
    return model


FLOAT16_MAX = 65504.0


def to_float16(model):
    """The model with float16 weights, inputs and outputs, computing in float32 inside.

    Every weight (the state_dict's float tensors) is stored as float16 and cast to float32
    where the graph starts; float inputs are float16 and cast up; float outputs are cast down
    to float16 at the end. The operators themselves stay float32, so the model runs on
    onnxruntime's CPU provider, whose float16 kernels cover few operators, and softmaxes and
    reductions keep float32 accumulation. Compile-time constants (`const_*`: epsilons, -inf
    masks, index tables) keep their types: float16 would turn a large mask value into inf
    and a small epsilon into 0. A weight beyond float16's range is refused.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    head, tail = [], []
    for init in g.initializer:
        if init.data_type != TensorProto.FLOAT or init.name.startswith("const_"):
            continue
        w = numpy_helper.to_array(init)
        if w.size and float(np.max(np.abs(w))) > FLOAT16_MAX:
            raise ExportError(f"weight `{init.name}` holds {float(np.max(np.abs(w))):.4g}, "
                              f"beyond float16's range (±{FLOAT16_MAX:g})",
                              hints=("export in float32",))
        name = init.name
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float16), f"{name}.float16"))
        head.append(helper.make_node("Cast", [f"{name}.float16"], [name],
                                     name=f"float16/{name}", to=TensorProto.FLOAT))
    renamed: dict[str, str] = {}
    for vi in g.input:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16
            renamed[vi.name] = f"{vi.name}.float32"
            head.append(helper.make_node("Cast", [vi.name], [renamed[vi.name]],
                                         name=f"float16/{vi.name}", to=TensorProto.FLOAT))
    for node in g.node:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    for vi in g.output:
        if vi.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        vi.type.tensor_type.elem_type = TensorProto.FLOAT16
        inner = f"{vi.name}.float32"
        for node in g.node:
            node.output[:] = [inner if o == vi.name else o for o in node.output]
        tail.append(helper.make_node("Cast", [inner], [vi.name], name=f"float16/{vi.name}",
                                     to=TensorProto.FLOAT16))
    nodes = [*head, *g.node, *tail]
    del g.node[:]
    g.node.extend(nodes)
    out.doc_string = model.doc_string + " (float16 weights and I/O, float32 compute)"
    try:
        onnx.checker.check_model(out, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"the float16 ONNX model failed onnx.checker: {err}") from None
    return out


def write_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Write to a temporary file beside `path`, then rename: never a partial file.

    The temporary file is opened like any new file (mode 0o666 less the umask); `mkstemp`'s
    0o600 would survive the rename and leave an exported model unreadable to others.
    """
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:  # pragma: no cover - a 48-bit name collision
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the rename must not publish data still in flight
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
