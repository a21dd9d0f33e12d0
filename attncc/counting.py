"""`attncc.count`: parameters and multiply-accumulates per layer and in total.

Conventions, stated once:
- MACs are the multiply-accumulates of the matrix-product ops: convolutions (grouped and
  depthwise included), linear / dense layers and attncc's `contract` (einsum) and
  `dynamic_conv`. One MAC is one multiply and one add, so MACs = FLOPs / 2 in the convention
  of `torch.utils.flop_counter.FlopCounterMode`, which counts those ops only. Biases are not
  counted (FlopCounterMode leaves them out too). This is the quantity papers report as
  "FLOPs" or "GFLOPs" for ResNets (ResNet-50: about 4.1 G at 224×224 with torchvision's
  layout, 3.86 G with the stride in the 1×1 conv).
- Every other op is counted apart, as "other FLOPs" (elementwise and reductions), from
  attncc's cost model for compiled blocks (each op's `cost`: an activation or an arithmetic
  op is 1 per output element, sigmoid 4, batch norm 2, a mean 1 per input element, softmax
  5, a pooling window one per tap) and, for the backbone's torch layers, with the same rates:
  BatchNorm 2 per element, ReLU/ReLU6 1, max pooling one per tap, average pooling one per
  tap plus a divide per output, adaptive average pooling one per input element. Functional
  code in a module's own forward (a residual `out + x`) is not a layer and is not counted.
- Parameters are the model's trainable and frozen `nn.Parameter`s, each counted once;
  buffers (BN statistics, FcaNet's DCT basis) are not parameters.

Counts are for the whole input batch; give batch 1 for per-image figures.

Example:
    >>> import attncc
    >>> from attncc import nets
    >>> c = attncc.count(nets.resnet50(attention="se"), (1, 3, 224, 224))
    >>> round(c.params / 1e6, 2), round(c.macs / 1e9, 2)
    (28.09, 4.09)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# attncc ops whose cost is multiply-accumulates (cost.flops = 2 x MACs)
MAC_OPS = frozenset({"conv", "dense", "contract", "dynamic_conv", "attend"})


@dataclass
class Row:
    """One layer: its name in the model, its kind, parameters, MACs and other FLOPs."""

    name: str
    kind: str
    params: int = 0
    macs: int = 0
    other: int = 0
    calls: int = 0


@dataclass
class Count:
    """Per-layer rows and totals; `str()` is a table."""

    rows: list[Row] = field(default_factory=list)
    params: int = 0
    input_shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def other_flops(self) -> int:
        return sum(r.other for r in self.rows)

    @property
    def flops(self) -> int:
        """2 x MACs: FlopCounterMode's number."""
        return 2 * self.macs

    def by_kind(self) -> dict[str, Row]:
        """Rows summed per kind (`Conv2d`, `attncc:SE`, ...)."""
        out: dict[str, Row] = {}
        for r in self.rows:
            t = out.setdefault(r.kind, Row(r.kind, r.kind))
            t.params += r.params
            t.macs += r.macs
            t.other += r.other
            t.calls += r.calls
        return out

    def attention(self) -> Row:
        """The compiled blocks' share: parameters, MACs and other FLOPs."""
        t = Row("attention", "attncc")
        for r in self.rows:
            if r.kind.startswith("attncc:"):
                t.params += r.params
                t.macs += r.macs
                t.other += r.other
        return t

    def table(self, layers: bool = True) -> str:
        head = ("layer", "kind", "params", "MACs", "other FLOPs")
        body = [(r.name or "<model>", r.kind, f"{r.params:,}", f"{r.macs:,}", f"{r.other:,}")
                for r in self.rows] if layers else []
        att = self.attention()
        if att.params or att.macs or att.other:
            body.append(("attention blocks", "", f"{att.params:,}", f"{att.macs:,}",
                         f"{att.other:,}"))
        body.append(("total", "", f"{self.params:,}", f"{self.macs:,}",
                     f"{self.other_flops:,}"))
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                 for r in [head, *body]]
        shapes = " ".join("x".join(map(str, s)) for s in self.input_shapes)
        lines.append(f"at input {shapes}: {_human(self.params)} parameters, "
                     f"{_human(self.macs)} MACs (= {_human(self.flops)} FLOPs as "
                     f"FlopCounterMode counts), {_human(self.other_flops)} other FLOPs")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return str(n)


def count(model: Any, input_shape: Sequence[int] | Sequence[Sequence[int]]
          | Mapping[str, Sequence[int]]) -> Count:
    """Parameters, MACs and other FLOPs of `model` at `input_shape`, per layer and in total.

    Compiled attncc blocks are counted from their IR's cost model; the other leaf modules
    (Conv, Linear, BatchNorm, activations, pooling) with the standard formulas. One forward
    pass (eval mode, no grad; fake tensors for large inputs) records each layer's shapes.

    Args:
        model: a torch.nn.Module (a backbone, a compiled block, any model).
        input_shape: one input's shape `(N, C, H, W)`, a sequence of shapes for several
            inputs, or a mapping from input name to shape, in the model's input order.
    """
    shapes = _input_shapes(input_shape)
    units = _units(model)
    rows = {name: Row(name, _kind(m), params=_own_params(m, name in _compiled_names(units)))
            for name, m in units.items()}
    handles = []
    for name, m in units.items():
        handles.append(m.register_forward_hook(_Recorder(rows[name])))
    was = {m: m.training for m in model.modules()}
    model.eval()
    try:
        _dry_run(model, shapes)
    finally:
        for h in handles:
            h.remove()
        for m, t in was.items():
            m.train(t)
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    kept = [r for r in rows.values() if r.params or r.calls]
    return Count(kept, total, tuple(shapes.values()))


def _dry_run(model: Any, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """One forward pass for the shapes only. Small inputs run on zeros; large ones on fake
    tensors, which carry shapes and do no arithmetic (a ResNet-50 at 224×224 in about a
    second, whatever the machine), falling back to zeros for a model that fake tensors
    cannot run."""
    import torch

    if sum(math.prod(s) for s in shapes.values()) > FAKE_ABOVE:
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode

            with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
                model(*(torch.zeros(s) for s in shapes.values()))
            return
        except Exception:  # data-dependent shapes, or an op without a fake kernel
            pass
    with torch.no_grad():
        model(*(torch.zeros(s) for s in shapes.values()))


FAKE_ABOVE = 3 * 64 * 64  # input elements above which the dry run uses fake tensors


class _Recorder:
    def __init__(self, row: Row) -> None:
        self.row = row

    def __call__(self, module: Any, args: tuple, output: Any) -> None:
        macs, other = layer_cost(module, args, output)
        self.row.macs += macs
        self.row.other += other
        self.row.calls += 1


def _input_shapes(input_shape: Any) -> dict[str, tuple[int, ...]]:
    if isinstance(input_shape, Mapping):
        return {str(k): tuple(int(s) for s in v) for k, v in input_shape.items()}
    items = list(input_shape)
    if items and all(isinstance(s, int) for s in items):
        return {"x": tuple(items)}
    return {f"x{i}": tuple(int(s) for s in v) for i, v in enumerate(items)}


def _is_compiled(m: Any) -> bool:
    return getattr(m, "ir", None) is not None and hasattr(m, "source")


def _units(model: Any) -> dict[str, Any]:
    """The modules counted as one row: compiled blocks (whole) and the leaves elsewhere, and
    any other module holding parameters of its own."""
    units: dict[str, Any] = {}
    inside: set[int] = set()
    for name, m in model.named_modules():
        if id(m) in inside:
            continue
        if _is_compiled(m):
            units[name] = m
            inside.update(id(s) for s in m.modules())
        elif not any(True for _ in m.children()) or any(True for _ in
                                                       m.parameters(recurse=False)):
            units[name] = m
    return units


def _compiled_names(units: Mapping[str, Any]) -> set[str]:
    return {n for n, m in units.items() if _is_compiled(m)}


def _own_params(m: Any, whole: bool) -> int:
    return sum(p.numel() for p in m.parameters(recurse=whole))


def _kind(m: Any) -> str:
    return f"attncc:{m.ir.block}" if _is_compiled(m) else type(m).__name__


def layer_cost(module: Any, args: tuple, output: Any) -> tuple[int, int]:
    """(MACs, other FLOPs) of one call of a layer."""
    import torch
    from torch import nn

    if _is_compiled(module):
        return block_cost(module.ir, [tuple(a.shape) for a in args
                                      if isinstance(a, torch.Tensor)])
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, torch.Tensor):
        return 0, 0
    n_out = out.numel()
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if isinstance(module, nn.modules.conv._ConvNd):
        # every output element: (input channels per group) x kernel taps
        return n_out * math.prod(module.weight.shape[1:]), 0
    if isinstance(module, nn.Linear):
        return n_out * module.in_features, 0
    if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
        return 0, 2 * n_out
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh)):
        return 0, n_out
    if isinstance(module, (nn.Sigmoid, nn.Tanh, nn.SiLU, nn.Hardsigmoid, nn.Hardswish,
                           nn.GELU)):
        return 0, 4 * n_out
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = module.kernel_size
        taps = k * k if isinstance(k, int) else math.prod(k)
        return 0, n_out * (taps + (1 if isinstance(module, nn.AvgPool2d) else 0))
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and x is not None:
        return 0, x.numel()
    return 0, 0  # Identity, Dropout, Flatten and layers unknown here


def block_cost(ir: Any, shapes: Sequence[tuple[int, ...]]) -> tuple[int, int]:
    """(MACs, other FLOPs) of a compiled block at its inputs' shapes, from the IR's costs.

    Every node's shape comes from the NumPy reference run on zeros (exact for dims a rule
    derives, such as pooled sizes), cached per (block, shapes).
    """
    key = (id(ir), tuple(shapes))
    if key not in _CACHE:
        _CACHE[key] = _block_cost(ir, shapes)
    return _CACHE[key]


_CACHE: dict[tuple, tuple[int, int]] = {}


def _block_cost(ir: Any, shapes: Sequence[tuple[int, ...]]) -> tuple[int, int]:
    import numpy as np

    from attncc.ops import get_op
    from attncc.show import node_shapes

    names = [ir.node(n).name for n in ir.inputs]
    with np.errstate(all="ignore"):
        sizes = node_shapes(ir, dict(zip(names, shapes, strict=False)))
    macs = other = 0
    from attncc.backends.torch_codegen import attention_only

    lazy = attention_only(ir)  # the forward computes these only when the maps are asked for
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op in ("input", "param") or n in lazy:
            continue
        ins = ir.inputs_of(n)
        k = len(ins) - len(nd.pnames)
        params = {p: ir.node(i).param.shape for p, i in zip(nd.pnames, ins[k:], strict=True)}
        attrs = {a: v for a, v in nd.attrs.items() if not a.startswith("_")}
        flops = get_op(nd.op).cost([sizes[i] for i in ins[:k]], sizes[n], attrs, params).flops
        if nd.op in MAC_OPS:
            macs += flops // 2
        else:
            other += flops
    return macs, other

