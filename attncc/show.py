"""Views of a compiled block: a stage / parameter / FLOP table, and a Graphviz picture.

The picture groups ops into one coloured cluster per stage and labels every edge with the
named dims the tensor carries. Parameters fold into their op's node; `align` plumbing and
numbers are left out, so the graph reads like the spec.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from attncc.diagnostics import AttnccError
from attncc.ir import IR
from attncc.ops import get_op

STAGE_COLOURS = {
    "squeeze": "#dbeafe",
    "excite": "#fde68a",
    "gate": "#bbf7d0",
    "aggregate": "#e9d5ff",
}
OTHER_STAGE = "#e5e7eb"


# ---- the table ----
def node_shapes(ir: IR, shapes: Mapping[str, tuple[int, ...]]) -> dict[int, tuple[int, ...]]:
    """Every node's concrete shape at the given input shapes (derived dims included).

    Runs the NumPy reference on zeros: exact for every dim a rule derives (H + W, pooled
    sizes), and cheap at the sizes one inspects.
    """
    from attncc.backends.numpy_ref import evaluate

    inputs = {name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}
    params = {ir.node(n).name: np.zeros(ir.node(n).param.shape,
                                        dtype=np.int64 if ir.node(n).param.dtype == "int64"
                                        else np.float32)
              for n in ir.params()}
    return {n: v.shape for n, v in evaluate(ir, inputs, params).items()}


def stage_table(ir: IR, shapes: Mapping[str, tuple[int, ...]] | None = None) -> str:
    """Ops, parameters and (with shapes) FLOPs per stage, with totals."""
    sizes = node_shapes(ir, shapes) if shapes else None
    rows: dict[str, list[int]] = {}
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op == "input":
            continue
        row = rows.setdefault(nd.stage or "-", [0, 0, 0])
        if nd.op == "param":
            row[1] += 0 if nd.param.buffer else nd.param.numel
            continue
        if "internal" not in get_op(nd.op).traits:
            row[0] += 1
        if sizes is not None:
            ins = ir.inputs_of(n)
            k = len(ins) - len(nd.pnames)
            params = {p: ir.node(i).param.shape for p, i in zip(nd.pnames, ins[k:], strict=True)}
            attrs = {a: v for a, v in nd.attrs.items() if not a.startswith("_")}
            cost = get_op(nd.op).cost([sizes[i] for i in ins[:k]], sizes[n], attrs, params)
            row[2] += cost.flops
    header = ["stage", "ops", "params"] + (["FLOPs"] if sizes is not None else [])
    body = [[stage, f"{r[0]}", f"{r[1]:,}"] + ([_flops(r[2])] if sizes is not None else [])
            for stage, r in rows.items()]
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    body.append(["total", f"{total[0]}", f"{total[1]:,}"]
                + ([_flops(total[2])] if sizes is not None else []))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *body]]
    if shapes:
        at = ", ".join(f"{k}=[{', '.join(map(str, v))}]" for k, v in shapes.items())
        lines.insert(0, f"{ir.block} at {at}")
    return "\n".join(lines)


def _flops(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


# ---- the picture ----
def _q(text: str) -> str:
    """A DOT string literal: spec names are quoted and escaped, never spliced raw."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(ir: IR) -> str:
    """The block as a Graphviz digraph: stages as clusters, dims on the edges."""
    hidden = {n for n in ir.graph.nodes
              if (ir.node(n).op == "param" and not ir.node(n).attrs.get("declared"))
              or (ir.node(n).op not in ("input", "param")
              and "internal" in get_op(ir.node(n).op).traits)}

    def source(n: int) -> int | None:
        # follow `align` plumbing back to a visible producer; numbers disappear
        while n in hidden:
            nd = ir.node(n)
            if nd.op == "param" or not ir.inputs_of(n) or nd.op == "scalar":
                return None
            n = ir.inputs_of(n)[0]
        return n

    attention = set(ir.attention.values())
    lines = [f"digraph {_q(ir.block)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    # one cluster per run of statements with the same stage, in source order: CBAM's two
    # squeeze stages (channel, then spatial) are two clusters, as in the spec
    runs: list[tuple[str | None, list[int]]] = []
    for n in sorted((n for n in ir.topo() if n not in hidden),
                    key=lambda n: (ir.node(n).span.line, ir.node(n).span.col)
                    if ir.node(n).span else (0, 0)):
        stage = ir.node(n).stage
        if not runs or runs[-1][0] != stage:
            runs.append((stage, []))
        runs[-1][1].append(n)
    for i, (stage, nodes) in enumerate(runs):
        indent = "  "
        if stage is not None:
            lines += [f"  subgraph cluster_{i} {{", f"    label={_q(stage)};", "    style=filled;",
                      f"    color={_q(STAGE_COLOURS.get(stage, OTHER_STAGE))};"]
            indent = "    "
        for n in nodes:
            lines.append(f"{indent}n{n} [{_node_attrs(ir, n, n in attention)}];")
        if stage is not None:
            lines.append("  }")
    for n in ir.topo():
        if n in hidden:
            continue
        nd = ir.node(n)
        k = len(ir.inputs_of(n)) - len(nd.pnames)
        for src in ir.inputs_of(n)[:k]:
            s = source(src)
            if s is not None:
                lines.append(f"  n{s} -> n{n} [label={_q(str(ir.node(s).out))}];")
    for name, v in ir.outputs:
        lines.append(f"  out_{v} [label={_q(name)}, shape=doubleoctagon];")
        lines.append(f"  n{v} -> out_{v} [label={_q(str(ir.node(v).out))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attrs(ir: IR, n: int, is_attention: bool) -> str:
    nd = ir.node(n)
    if nd.op == "input":
        return f"label={_q(f'{nd.name} {nd.out}')}, shape=ellipse"
    if nd.op == "param":
        return f"label={_q(f'{nd.name} {nd.out}')}, shape=note"
    ins = ir.inputs_of(n)
    params = ins[len(ins) - len(nd.pnames):]
    count = sum(ir.node(p).param.numel for p in params if not ir.node(p).param.buffer)
    label = f"{nd.name}\n{nd.op}" + (f"\n{count:,} params" if count else "")
    extra = ', color="#dc2626", penwidth=2.5' if is_attention else ""
    return f"label={_q(label)}{extra}"


def render(dot: str, fmt: str, out: Path) -> Path:
    """Write `out` in `fmt` (dot, svg or png). Without Graphviz, write the DOT file and say so."""
    from attncc.backends.onnx_export import write_atomic

    if fmt == "dot":
        write_atomic(dot.encode(), out)
        return out
    exe = shutil.which("dot")
    if exe is None:
        dot_path = out.with_suffix(".dot")
        write_atomic(dot.encode(), dot_path)
        raise AttnccError(
            f"Graphviz's `dot` is not installed, so no {fmt.upper()} was drawn",
            hints=("install it: `apt-get install graphviz` (Debian/Ubuntu), "
                   "`brew install graphviz` (macOS), `conda install graphviz`",),
            notes=(f"the DOT source was written to {dot_path}",))
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        raise AttnccError(f"Graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    write_atomic(proc.stdout, out)
    return out
