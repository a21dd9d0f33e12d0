"""The `attncc` command line: check, show, compile, export, count, list; diagnostics and exit codes.

Exit codes: 0 ok, 1 a mistake in the user's input, 2 bad command-line usage, 3 an internal
error (with a "please report" line; the traceback only with --traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from attncc import __version__
from attncc.diagnostics import AttnccError, InternalError, use_color

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
FP16_TOL = 1e-2  # `export --fp16`: float16 rounding of weights, inputs and outputs


class UsageError(Exception):
    """A malformed command-line value (exit code 2)."""


# ---- argument helpers ----
def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`--set r=8 --set C=64` -> {"r": 8, "C": 64}."""
    from attncc.hyper import parse_literal

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UsageError(f"--set expects NAME=VALUE, got `{item}`")
        out[key.strip()] = parse_literal(value)
    return out


def parse_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`--shape x=2,64,17,23` -> {"x": (2, 64, 17, 23)}."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            dims = tuple(int(v) for v in value.split(","))
        except ValueError:
            dims = ()
        if not sep or not key.strip().isidentifier() or not dims:
            raise UsageError(f"--shape expects INPUT=N,C,H,W, got `{item}`")
        out[key.strip()] = dims
    return out


# ---- commands ----
def shapes_for(args: argparse.Namespace, src: Any, hyper: dict[str, Any]) -> dict:
    """--shape values, else the spec's `example` shapes (with --set dims substituted)."""
    from attncc.compiler import example_shapes

    return parse_shapes(args.shape) or example_shapes(src, args.block, hyper)


def hyper_for(args: argparse.Namespace, src: Any) -> dict[str, Any]:
    """--set values over the chosen --preset's."""
    from attncc.compiler import apply_preset

    return apply_preset(src, args.preset, parse_sets(args.set), args.block)


def passes_for(args: argparse.Namespace) -> dict[str, Any]:
    """compile_ir's pass options from -O and --disable."""
    return {"opt_level": args.opt_level, "disable": tuple(args.disable)}


def cmd_check(args: argparse.Namespace) -> int:
    from attncc.compiler import compile_ir, presets, read_source

    src = read_source(args.spec)
    hyper = hyper_for(args, src)
    ir = compile_ir(src, hyper, shapes_for(args, src, hyper) or None, block=args.block,
                    preset=args.preset, **passes_for(args))
    print(summary(ir, presets(src, args.block)))
    return EXIT_OK


def summary(ir: Any, presets: dict[str, dict[str, Any]] | None = None) -> str:
    """Block, inputs, hyperparameters, stages with their ops, and the parameter count."""
    from collections import Counter

    from attncc.ops import get_op

    lines = [f"block {ir.block}  ({ir.path})"]
    for n in ir.inputs:
        nd = ir.node(n)
        sizes = ", ".join(f"{d}={ir.dims[d]}" if ir.dims.get(d) is not None else d
                          for d in nd.out.dims)
        lines.append(f"  input   {nd.name}: [{sizes}]")
    if ir.hyper:
        chosen = f"  (preset {ir.preset})" if ir.preset else ""
        lines.append("  hyper   " + ", ".join(f"{k}={v}" for k, v in ir.hyper.items()) + chosen)
    if presets:
        lines.append("  presets " + "; ".join(
            f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items())
            for name, values in presets.items()))
    fixed = {d: s for d, s in ir.dims.items() if s is not None}
    if fixed:
        lines.append("  dims    " + ", ".join(f"{d}={s}" for d, s in fixed.items()))
    by_stage: dict[str, Counter] = {}
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op in ("input", "param") or "internal" in get_op(nd.op).traits:
            continue  # aligns and numbers are plumbing, not the block's ops
        by_stage.setdefault(nd.stage or "-", Counter())[nd.op] += 1
    lines.append("  stages")
    for stage, ops in by_stage.items():
        shown = ", ".join(f"{op}×{c}" if c > 1 else op for op, c in ops.items())
        lines.append(f"    {stage:<10} {shown}")
    n_ops = sum(sum(c.values()) for c in by_stage.values())
    params = ir.parameter_count()
    buffers = sum(ir.node(n).param.numel for n in ir.params() if ir.node(n).param.buffer)
    lines.append(f"  ops     {n_ops}")
    lines.append(f"  params  {params:,}" + (f"  (+{buffers:,} in buffers)" if buffers else ""))
    if ir.attention:
        lines.append("  attention maps: " + ", ".join(ir.attention))
    outs = ", ".join(f"{name}: {ir.node(v).out}" for name, v in ir.outputs)
    lines.append(f"  returns {outs}")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from attncc.api import compile as compile_module
    from attncc.api import to_onnx, verify_export, verify_onnx
    from attncc.backends.onnx_export import write_atomic
    from attncc.compiler import read_source

    src = read_source(args.spec)
    hyper = hyper_for(args, src)
    shapes = shapes_for(args, src, hyper)
    module = compile_module(src.path if src.path != "<string>" else src.text, shapes=shapes,
                            seed=args.seed, block=args.block, preset=args.preset,
                            **passes_for(args), **hyper)
    ir = module.ir
    missing = [ir.node(n).name for n in ir.inputs if ir.node(n).name not in shapes]
    if missing:
        raise UsageError(f"give an example shape for every input: --shape {missing[0]}=N,C,H,W "
                         f"(or add `example {missing[0]}: [...]` to the spec)")
    model = to_onnx(module, attention_outputs=args.attention, opset=args.opset,
                    static_shapes=shapes if args.static else None,
                    dtype="float16" if args.fp16 else "float32")
    tol = args.tol if args.tol is not None else FP16_TOL if args.fp16 else 1e-4
    rng = np.random.default_rng(args.seed)
    inputs = {ir.node(n).name: rng.standard_normal(shapes[ir.node(n).name]).astype(np.float32)
              for n in ir.inputs}
    # the default graph at two sets of weights, and the very model being written
    diff = max(verify_export(module, inputs, seed=args.seed), verify_onnx(module, model, inputs))
    shape_text = " ".join(f"{k}={','.join(map(str, v))}" for k, v in shapes.items())
    print(f"{ir.block}: {ir.parameter_count():,} parameters, opset "
          f"{model.opset_import[0].version}, {len(model.graph.node)} ONNX nodes")
    print(f"onnxruntime vs torch on {shape_text} (the block's weights and random ones): "
          f"max |difference| = {diff:.3g} (over the output's scale when it exceeds 1)")
    if not diff <= tol:  # also catches NaN
        print(f"error: difference {diff:.3g} exceeds the tolerance {tol:g}; "
              f"{args.output} was not written", file=sys.stderr)
        return EXIT_USER
    write_atomic(model.SerializeToString(), args.output)
    print(f"wrote {args.output}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from attncc.compiler import compile_ir, read_source
    from attncc.show import render, stage_table, to_dot

    src = read_source(args.spec)
    hyper = hyper_for(args, src)
    shapes = shapes_for(args, src, hyper)
    ir = compile_ir(src, hyper, shapes or None, block=args.block, until=args.after,
                    **passes_for(args))
    if args.format == "text":
        text = ir.dump() + "\n\n" + stage_table(ir, shapes or None) + "\n"
        if args.output:
            from attncc.backends.onnx_export import write_atomic

            write_atomic(text.encode(), args.output)
            print(f"wrote {args.output}")
        else:
            print(text, end="")
        return EXIT_OK
    dot = to_dot(ir)
    if args.format == "dot" and not args.output:
        print(dot, end="")
        return EXIT_OK
    out = Path(args.output or f"{ir.block.lower()}.{args.format}")
    render(dot, args.format, out)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from attncc.backends.onnx_export import write_atomic
    from attncc.backends.torch_codegen import generate
    from attncc.compiler import compile_ir, read_source

    src = read_source(args.spec)
    hyper = hyper_for(args, src)
    ir = compile_ir(src, hyper, shapes_for(args, src, hyper) or None, block=args.block,
                    **passes_for(args))
    code = generate(ir)
    write_atomic(code.src.encode(), args.output)
    print(f"wrote {args.output}: class {code.class_name}, {ir.parameter_count():,} parameters")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from attncc.compiler import compile_ir, example_shapes, read_source
    from attncc.library import spec_info, spec_paths

    rows = [("spec", "category", "paper", "params", "at", "mechanism")]
    for path in spec_paths():
        info = spec_info(path)
        try:
            src = read_source(path)
            shapes = example_shapes(src)
            params = f"{compile_ir(src, shapes=shapes or None).parameter_count():,}"
            at = " ".join(f"{k}={'x'.join(map(str, v))}" for k, v in shapes.items())
        except AttnccError:
            params, at = "error", "(attncc check " + path.stem + ")"
        rows.append((info.name, info.category, info.citation, params, at, info.title))
    if args.markdown:
        # the README's table: what each spec was checked against in tests/paper_refs
        head = ("spec", "mechanism", "category", "paper", "params at its example",
                "reference written from")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for path, r in zip(spec_paths(), rows[1:], strict=True):
            code = spec_info(path).code.split(";")[0].split(" (")[0].rstrip(".")
            print(f"| `{r[0]}` | {r[5]} | {r[1]} | {r[2]} | {r[3]} | {code} |")
        return EXIT_OK
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        cells = [c.rjust(w) if k == 3 else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths,
                                                                                     strict=False))]
        print("  ".join([*cells, r[-1]]))
    return EXIT_OK


NET_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d", "mobilenet_v2")


def cmd_count(args: argparse.Namespace) -> int:
    from attncc.counting import count

    net, _, attention = args.target.partition("+")
    if net in NET_NAMES:
        from attncc import nets

        shape = parse_shapes(args.shape).get("x", (1, 3, 224, 224)) if args.shape else (
            1, 3, 224, 224)
        kw: dict[str, Any] = {"input_size": tuple(shape[2:4])}
        if attention:
            kw.update(attention=attention, attention_args=parse_sets(args.set),
                      placement=args.placement)
        elif args.set or args.placement:
            raise UsageError(f"--set and --placement need attention: `{net}+SPEC`")
        if args.stride_in_1x1:
            if not net.startswith("res"):
                raise UsageError("--stride-in-1x1 applies to the ResNets")
            kw["stride_in_1x1"] = True
        model, shapes = nets.NETS[net](**kw), [shape]
    else:
        if args.placement or args.stride_in_1x1:
            raise UsageError("--placement and --stride-in-1x1 apply to networks "
                             f"({', '.join(NET_NAMES)})")
        from attncc.api import compile as compile_module
        from attncc.compiler import read_source

        src = read_source(args.target)
        hyper = parse_sets(args.set)
        from attncc.compiler import example_shapes

        by_name = parse_shapes(args.shape) or example_shapes(src, None, hyper)
        model = compile_module(src.path if src.path != "<string>" else src.text,
                               shapes=by_name, **hyper)
        names = [model.ir.node(n).name for n in model.ir.inputs]
        missing = [n for n in names if n not in by_name]
        if missing:
            raise UsageError(f"give an example shape for every input: --shape "
                             f"{missing[0]}=N,C,H,W")
        shapes = [by_name[n] for n in names]
    print(count(model, shapes).table(layers=not args.total))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    if args.compile and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        # torch.compile's first call is timed: an empty kernel cache, not one an earlier run
        # filled on disk (set before torch is imported; the child process inherits it)
        import atexit
        import shutil
        import tempfile

        cache = tempfile.mkdtemp(prefix="attncc-bench-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    from attncc import bench
    from attncc.library import spec_paths

    specs = [p.stem for p in spec_paths()] if args.library else list(args.spec)
    if args.from_json:  # redraw the reports of a saved run, measuring nothing
        from pathlib import Path

        if specs:
            raise UsageError("--from-json reads a saved run: name no spec")
        rows, meta = bench.from_json(Path(args.from_json).read_text())
        return _bench_reports(args, rows, meta)
    if not specs:
        raise UsageError("name a spec (or several), or give --library")
    sets: list[dict[str, tuple[int, ...]]] = []
    for item in args.shape:  # a repeated input name starts the next shape set
        ((name, dims),) = parse_shapes([item]).items()
        if not sets or name in sets[-1]:
            sets.append({})
        sets[-1][name] = dims
    rows, meta = bench.run(specs, sets, hyper=parse_sets(args.set), repeats=args.repeats,
                           warmup=args.warmup, compile_=args.compile, onnx=not args.no_onnx,
                           threads=args.threads, disable=args.disable, inner=args.inner,
                           progress=not args.quiet, tuned_allocator=args.tuned_allocator)
    return _bench_reports(args, rows, meta)


def _bench_reports(args: argparse.Namespace, rows: list, meta: dict) -> int:
    from attncc import bench
    from attncc.backends.onnx_export import write_atomic

    table = bench.markdown(rows, meta)
    print(table, end="")
    for row in rows:
        if row.note:
            print(f"note: {row.spec}: {row.note.strip()}")
    if args.json:
        write_atomic(bench.to_json(rows, meta).encode(), args.json)
        print(f"wrote {args.json}")
    if args.markdown:
        write_atomic(table.encode(), args.markdown)
        print(f"wrote {args.markdown}")
    if args.summary:
        write_atomic(bench.summary(rows, meta).encode(), args.summary)
        print(f"wrote {args.summary}")
    if args.plot:
        skipped = bench.plot(rows, args.plot)
        print(f"note: {skipped}" if skipped else f"wrote {args.plot}")
    return EXIT_OK


# ---- parser ----
_EXAMPLES = {
    "check": "examples:\n  attncc check specs/se.attn --set C=64\n"
             "  attncc check cbam --shape x=2,64,17,23 --set r=8",
    "export": "examples:\n  attncc export specs/cbam.attn -o cbam.onnx --shape x=2,64,17,23\n"
              "  attncc export eca -o eca.onnx --shape x=1,256,14,14 --set gamma=3\n"
              "  attncc export stn -o stn.onnx --opset 20 --static",
    "list": "examples:\n  attncc list\n  attncc list --markdown",
    "show": "examples:\n  attncc show se --set C=64\n"
            "  attncc show cbam --set C=64 --after infer-shapes\n"
            "  attncc show cbam --format svg -o cbam.svg",
    "count": "examples:\n  attncc count se --shape x=1,256,56,56\n"
             "  attncc count resnet50+se --total\n"
             "  attncc count resnet50+cbam --stride-in-1x1 --set r=16\n"
             "  attncc count mobilenet_v2+coordatt --shape x=1,3,224,224\n"
             "  attncc count resnet18+eca --placement block --total\n"
             "MACs: multiply-accumulates of convs, linear layers and contractions (= FLOPs / 2 "
             "as\ntorch.utils.flop_counter counts them); other FLOPs: elementwise ops and "
             "reductions.",
    "compile": "examples:\n  attncc compile cbam --set C=256 -o cbam_block.py\n"
               "  python -c 'import cbam_block, torch; print(cbam_block.CBAM())'",
    "bench": "examples:\n  attncc bench se eca --shape x=8,256,56,56 --shape x=32,512,14,14\n"
             "  attncc bench nonlocal --shape x=8,256,28,28 --compile --json nl.json\n"
             "  attncc bench --library --markdown bench.md --plot bench.png\n"
             "peers: tests/paper_refs (from a checkout) and timm (if importable; make bench-env)",
}


def build_parser() -> argparse.ArgumentParser:
    from attncc.passes import PIPELINE

    p = argparse.ArgumentParser(
        prog="attncc",
        description="Compile declarative attention blocks (.attn) to PyTorch, ONNX and NumPy.",
        epilog="run `attncc COMMAND --help` for each command's options and examples",
    )
    p.add_argument("--version", action="version", version=f"attncc {__version__}")
    p.add_argument("--traceback", action="store_true",
                   help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, help_text: str, func, *, spec: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, epilog=_EXAMPLES[name],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=func)
        sp.add_argument("--limit", action="append", default=[], metavar="K=V",
                        help="raise or lower a resource limit, e.g. --limit params=2e9, "
                        "--limit intermediate_bytes=16GiB (repeatable; see attncc.limits; "
                        "also the ATTNCC_LIMITS environment variable)")
        if not spec:
            return sp
        sp.add_argument("spec", help="a .attn file or a bundled spec name (see `attncc list`)")
        sp.add_argument("--set", action="append", default=[], metavar="K=V",
                        help="bind a hyperparameter or dim size, e.g. --set C=64 (repeatable)")
        sp.add_argument("--block", help="the block to compile (default: the file's main block)")
        sp.add_argument("--preset", help="start from one of the spec's named presets "
                        "(e.g. paper, official, timm); --set values override it")
        sp.add_argument("--shape", action="append", default=[], metavar="IN=N,C,H,W",
                        help="an example input shape (default: the spec's `example`); fixes the "
                        "sizes parameters need (e.g. C), while batch and spatial dims stay dynamic")
        sp.add_argument("-O", dest="opt_level", type=int, choices=(0, 1), default=1,
                        help="-O0: only the passes every backend needs (no fusion, rewrites "
                        "or in-place writes); -O1 (default): the whole pipeline")
        sp.add_argument("--disable", action="append", default=[], metavar="PASS",
                        help="leave a pass out, e.g. --disable attend (repeatable; passes: "
                        + ", ".join(PIPELINE) + ")")
        return sp

    command("check", "parse and check a spec; print its stages, ops, params", cmd_check)

    sp = command("export", "export to ONNX and verify it in onnxruntime", cmd_export)
    sp.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    sp.add_argument("--seed", type=int, default=0, help="seed for weights and the test input")
    sp.add_argument("--tol", type=float, default=None,
                    help="largest accepted |onnxruntime - torch| (default 1e-4; 1e-2 with "
                    "--fp16)")
    sp.add_argument("--attention", action="store_true",
                    help="also output the attention maps (named attention.NAME)")
    sp.add_argument("--opset", type=int, default=None,
                    help="ONNX opset, 18 (default) to 21")
    sp.add_argument("--static", action="store_true",
                    help="fix the inputs' shapes to the example shapes (default: batch and "
                    "spatial dims stay symbolic)")
    sp.add_argument("--fp16", action="store_true",
                    help="float16 weights, inputs and outputs (float32 compute inside; runs "
                    "on onnxruntime's CPU provider)")

    sp = command("show", "the IR (one line per node), a stage/params/FLOPs table, or a picture",
                 cmd_show)
    sp.add_argument("--after", metavar="PASS",
                    help="stop the pipeline after this pass (validate, infer-shapes, cse, dce, "
                    "canonicalize)")
    sp.add_argument("--format", choices=("text", "dot", "svg", "png"), default="text",
                    help="text (default), or a Graphviz picture: stages as coloured clusters, "
                    "dims on the edges (svg/png need Graphviz's `dot`)")
    sp.add_argument("-o", "--output", help="write to this file (svg/png default: BLOCK.FORMAT)")

    sp = command("compile", "write the block as a standalone PyTorch .py file", cmd_compile)
    sp.add_argument("-o", "--output", required=True, help="the .py file to write")

    sp = command("count", "parameters and multiply-accumulates per layer and in total, of a "
                 "spec or a network with blocks", cmd_count, spec=False)
    sp.add_argument("target", help="a spec (name or .attn file), or a network: "
                    "resnet18|resnet34|resnet50|resnet101|resnext50_32x4d|mobilenet_v2, "
                    "optionally +SPEC for its attention blocks (resnet50+se)")
    sp.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="a hyperparameter of the spec / the attention blocks (repeatable)")
    sp.add_argument("--shape", action="append", default=[], metavar="IN=N,C,H,W",
                    help="an input shape (default: the spec's `example`; x=1,3,224,224 for "
                    "a network)")
    sp.add_argument("--placement", help="where a network gets the blocks (default: the "
                    "paper's): branch, conv, after_3x3, dw, replace_3x3, stage, block")
    sp.add_argument("--stride-in-1x1", action="store_true",
                    help="the original ResNet, stride in the first 1x1 conv (as SENet, CBAM "
                    "and BAM count FLOPs)")
    sp.add_argument("--total", action="store_true", help="totals only, no per-layer rows")

    sp = command("bench", "time attncc's backends against reference / timm modules",
                 cmd_bench, spec=False)
    sp.add_argument("spec", nargs="*", help="specs (names or .attn files)")
    sp.add_argument("--library", action="store_true", help="every bundled spec")
    sp.add_argument("--set", action="append", default=[], metavar="K=V",
                    help="a hyperparameter of every spec benchmarked (repeatable)")
    sp.add_argument("--shape", action="append", default=[], metavar="IN=N,C,H,W",
                    help="input shape (default: each spec's `example`); repeating an input "
                    "starts another shape")
    sp.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    sp.add_argument("--warmup", type=int, default=3, help="warm-up calls (default 3)")
    sp.add_argument("--inner", type=int, help="calls per timed sample (default: ~20 ms worth)")
    sp.add_argument("--compile", action="store_true", help="also time under torch.compile")
    sp.add_argument("--no-onnx", action="store_true", help="skip onnxruntime")
    sp.add_argument("--threads", type=int, help="torch/onnxruntime threads")
    sp.add_argument("--tuned-allocator", action="store_true",
                    help="also time the peers under a tuned allocator (jemalloc where "
                    "installed, else glibc thresholds raised), in a child process")
    sp.add_argument("--disable", action="append", default=[], metavar="PASS",
                    help="compile attncc's module without this pass (repeatable)")
    sp.add_argument("--json", metavar="FILE", help="write the results as JSON")
    sp.add_argument("--markdown", metavar="FILE", help="write the Markdown table")
    sp.add_argument("--from-json", metavar="FILE",
                    help="measure nothing: redraw the table, summary and plot of a saved run")
    sp.add_argument("--summary", metavar="FILE",
                    help="write a compact Markdown table: attncc's best against the best peer")
    sp.add_argument("--plot", metavar="FILE.png", help="write a bar chart (needs matplotlib)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")

    sp = command("list", "list the bundled specs", cmd_list, spec=False)
    sp.add_argument("--markdown", action="store_true",
                    help="print a Markdown table (the README's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    show_tb = args.traceback or os.environ.get("ATTNCC_TRACEBACK") == "1"
    try:
        from attncc.limits import parse_settings, using

        with using(**parse_settings(args.limit)):
            return args.func(args)
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"attncc: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except InternalError as err:
        return _internal(err, show_tb)
    except AttnccError as err:
        print(err.render(color=use_color(sys.stderr)), file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("attncc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`attncc list | head`): not an error; silence the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:  # a bug in attncc: never a bare traceback for the user
        return _internal(err, show_tb)


def _internal(err: BaseException, show_tb: bool) -> int:
    if show_tb:
        traceback.print_exception(err)
    print(f"attncc: internal error: {err}", file=sys.stderr)
    print("please report this at the attncc issue tracker, with the spec and the command "
          "(rerun with --traceback for details)", file=sys.stderr)
    return EXIT_INTERNAL
