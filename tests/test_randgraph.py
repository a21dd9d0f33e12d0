"""Random-graph differential testing: seeded random well-typed `.attn` blocks, four backends.

A generator writes spec *text* (so the parser, the elaborator and every pass are exercised):
chains and DAGs of registry ops over random named dims and hyperparameters, with branches
(any earlier value may be reused), shared `layer`s applied twice, and `repeat` loops. Each
graph is compiled, given random nonzero weights, and run by the NumPy reference, the
generated PyTorch module, onnxruntime, and the standalone source `attncc compile -o` writes
(imported as a file, loading the module's state_dict); all four must agree.

A disagreement is shrunk (statements dropped greedily while it still fails) and the minimal
spec is written to $ATTNCC_REPRO_DIR (or tests/randgraph/regressions/ by the campaign
runner); every spec in tests/randgraph/regressions/ is replayed here.

A second family starts from every op's own `samples()` (the registry's statement of legal
inputs and attribute values), written as text with run-time N, H, W where the op allows,
and continues with a random chain over its output. Ops it cannot state as text: `take`
(an int64 index input) and `dct2d`, `rel_grid` (no tensor input); the per-op test
(tests/test_ops.py) runs those. The first family writes only the generic ops (elementwise,
reductions, softmax, dense, conv, pools, norms, contract, stack, concat, merge/unmerge,
expand, repeat); ops whose constraints tie several dims together (sampling grids, dynamic
kernels, index tables, windows) come in through their samples.

Long campaigns: `python tests/test_randgraph.py --start 0 --count 2000` (failures are shrunk
and saved under tests/randgraph/regressions/).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _harness as h
import numpy as np
import pytest
import torch

import attncc
from attncc.cli import main as cli_main

REGRESSIONS = Path(__file__).resolve().parent / "randgraph" / "regressions"
CI_SEEDS = range(150)  # bounded: about 15 s on one core (the op samples: 10 s more)
RTOL, ATOL = 1e-4, 1e-5  # float32; ATOL scales with each output's magnitude (max(1, max|y|))

UNARY = ("relu", "relu6", "sigmoid", "hard_sigmoid", "hard_swish", "silu", "gelu", "softplus",
         "tanh", "abs", "neg", "stop_gradient")
GUARDED = {"exp": "exp(tanh({}))", "log": "log(1 + abs({}))", "sqrt": "sqrt(0.25 + abs({}))"}
REDUCE = ("mean", "max", "min", "sum", "l2", "logsumexp", "var", "std")


@dataclass
class Graph:
    """A random block: statements (one per line, droppable by the shrinker) and its setting."""

    hyper: dict[str, int]
    sizes: dict[str, int]
    inputs: list[tuple[str, tuple[str, ...]]]
    stmts: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)
    seed: int = 0

    def text(self, stmts: list[str] | None = None, outputs: list[str] | None = None,
             attention: list[str] | None = None) -> str:
        stmts = self.stmts if stmts is None else stmts
        outputs = self.outputs if outputs is None else outputs
        attention = self.attention if attention is None else attention
        ins = ", ".join(f"{n}: [{', '.join(d)}]" for n, d in self.inputs)
        hyp = "".join(f", {k}: int = {v}" for k, v in self.hyper.items()
                      if k not in {d for _, ds in self.inputs for d in ds})
        sizes = " ".join(f"{k}={v}" for k, v in self.sizes.items())
        hyper = " ".join(f"{k}={v}" for k, v in self.hyper.items())
        lines = [f"# random graph, seed {self.seed}", f"# hyper: {hyper}", f"# sizes: {sizes}",
                 f"block R({ins}{hyp}) {{"]
        lines += [f"  {s}" for s in stmts]
        defined = "\n".join(stmts)
        att = [a for a in attention if _defines(defined, a)]
        if att:
            lines.append(f"  attention {', '.join(att)}")
        lines.append(f"  return {', '.join(outputs)}")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _defines(text: str, name: str) -> bool:
    return any(line.lstrip().startswith(f"{name} = ") or f" {name} = " in line
               for line in text.splitlines())


class Gen:
    """Writes one random block; `vars` maps each value's name to its dims (in order)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        r = self.rng
        c = r.choice([4, 6, 8, 12])
        d = r.choice([5, 7, 10])
        self.fixed: dict[str, int] = {"C": c, "D": d}
        self.hyper: dict[str, int] = {"C": c, "D": d}
        h_, w_ = r.sample([1, 3, 4, 5, 6, 7] if r.random() < 0.2 else [3, 4, 5, 6, 7], 2)
        self.sizes = {"N": r.choice([1, 2, 3]), "H": h_, "W": w_}
        self.inputs: list[tuple[str, tuple[str, ...]]] = [("x", ("N", "C", "H", "W"))]
        if r.random() < 0.5:
            self.inputs.append(("u", ("N", "D")))
        if r.random() < 0.3:  # the same dims in another order: alignment everywhere
            self.inputs.append(("v", tuple(r.choice([("N", "H", "W", "C"), ("W", "N", "C", "H"),
                                                     ("N", "W", "C", "H")]))))
        self.vars: dict[str, tuple[str, ...]] = dict(self.inputs)
        self.stmts: list[str] = []
        if "u" not in dict(self.inputs):  # D is then a dim of the body only
            del self.hyper["D"]
            self.stmts.append(f"dim D = {d}")
        self.attention: list[str] = []
        self.merged: dict[str, tuple[str, str]] = {}  # merged dim -> its pieces
        self.n = 0

    # ---- helpers ----
    def fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def pick(self, pred: Callable[[tuple[str, ...]], bool] = lambda d: True) -> str | None:
        names = [v for v, d in self.vars.items() if pred(d)]
        if not names:
            return None
        recent = names[-3:]
        return self.rng.choice(recent if self.rng.random() < 0.6 else names)

    def subset(self, dims: tuple[str, ...], k_max: int | None = None) -> tuple[str, ...]:
        dims = tuple(d for d in dims if d != "N")
        k = self.rng.randint(1, min(len(dims), k_max or len(dims)))
        return tuple(self.rng.sample(dims, k))

    def new_dim(self, size: int | None = None) -> str:
        """A new fixed dim, declared as `dim Mk = <expression of hyperparameters>`."""
        name = self.fresh("M")
        r = self.rng
        if size is None:
            bases = [d for d in ("C", "D") if d in self.hyper or d in self.fixed]
            base = r.choice(bases) if bases else ""
            form = r.choice(["plain", "div", "max"]) if base else "plain"
            if form == "div" and self.fixed[base] % 2 == 0:
                size, expr = self.fixed[base] // 2, f"{base} // 2"
            elif form == "max":
                k = r.randint(3, 9)
                size, expr = max(self.fixed[base], k), f"max({base}, {k})"
            else:
                size = r.choice([3, 5, 9, 11])
                expr = str(size)
        else:
            expr = str(size)
        self.fixed[name] = size
        self.stmts.append(f"dim {name} = {expr}")
        return name

    def assign(self, dims: tuple[str, ...], expr: str, base: str = "t") -> str:
        name = self.fresh(base)
        self.stmts.append(f"{name} = {expr}")
        self.vars[name] = dims
        return name

    def size(self, d: str) -> int:
        return self.fixed.get(d) or self.sizes.get(d) or 1

    def static(self, dims: tuple[str, ...]) -> list[str]:
        return [d for d in dims if d in self.fixed]

    # ---- statements ----
    def unary(self) -> str | None:
        v = self.pick()
        op = self.rng.choice(UNARY + tuple(GUARDED))
        expr = GUARDED[op].format(v) if op in GUARDED else (
            f"-{v}" if op == "neg" and self.rng.random() < 0.5 else f"{op}({v})")
        return self.assign(self.vars[v], expr)

    def binary(self) -> str | None:
        a = self.pick()
        da = set(self.vars[a])
        bs = [v for v, d in self.vars.items() if set(d) <= da or da <= set(d)]
        b = self.rng.choice(bs)
        dims = self.vars[a] if set(self.vars[b]) <= da else self.vars[b]
        if self.rng.random() < 0.5:
            a, b = b, a
        form = self.rng.choice(["+", "-", "*", "/", "add", "sub", "mul", "maximum", "minimum",
                                "scale"])
        if form == "/":
            expr = f"{a} / (1.5 + abs({b}))"
        elif form in "+-*":
            expr = f"{a} {form} {b}"
        elif form == "scale":
            expr = f"{self.rng.choice(['0.5', '2', '-1.25'])} * {a} + {b}"
        else:
            expr = f"{form}({a}, {b})"
        return self.assign(dims, expr)

    def reduce(self) -> str | None:
        v = self.pick(lambda d: len(d) > 1)
        if v is None:
            return None
        over = self.subset(self.vars[v])
        op = self.rng.choice(REDUCE)
        if op in ("var", "std") and math.prod(self.size(d) for d in over) < 2:
            op = "mean"  # correction=1 over one element: NaN by definition
        extra = f", correction={self.rng.randint(0, 1)}" if op in ("var", "std") else ""
        dims = tuple(d for d in self.vars[v] if d not in over)
        return self.assign(dims, f"{op}({v}, over={' '.join(over)}{extra})", "r")

    def softmax(self) -> str | None:
        v = self.pick(lambda d: len(d) > 1)
        if v is None:
            return None
        over = self.subset(self.vars[v], 2)
        name = self.assign(self.vars[v], f"softmax({v}, over={' '.join(over)})", "a")
        self.attention.append(name)
        return name

    def dense(self) -> str | None:
        v = self.pick(lambda d: bool(self.static(d)))
        if v is None:
            return None
        dims = self.vars[v]
        src = self.rng.choice(self.static(dims))
        r = self.rng.random()
        if r < 0.15 and len(dims) > 2:
            dst, out = "()", tuple(d for d in dims if d != src)
        else:
            if r < 0.4:
                dst = src
            else:
                others = [d for d in self.fixed if d not in dims]
                dst = self.rng.choice(others) if others and self.rng.random() < 0.5 \
                    else self.new_dim()
            out = tuple(dst if d == src else d for d in dims)
        bias = "" if self.rng.random() < 0.6 else ", bias=false"
        if self.rng.random() < 0.35 and dst != "()":
            # a shared layer, applied here and once more to another value with `src`
            layer = self.fresh("L")
            self.stmts.append(f"layer {layer} = dense({src} -> {dst}{bias})")
            name = self.assign(out, f"{layer}({v})")
            w = self.pick(lambda d: src in d and (dst not in d or src == dst))
            if w is not None:
                self.assign(tuple(dst if d == src else d for d in self.vars[w]),
                            f"tanh({layer}({w}))")
            return name
        return self.assign(out, f"dense({v}, {src} -> {dst}{bias})")

    def _spatial(self, d: tuple[str, ...]) -> bool:
        rest = set(d) - {"N", "H", "W"}
        return {"N", "H", "W"} <= set(d) and len(rest) <= 1 and rest <= set(self.fixed)

    def conv(self) -> str | None:
        r = self.rng
        if r.random() < 0.25:  # 1-D across a fixed dim (ECA's form): [N, X] -> [N, X]
            v = self.pick(lambda d: len(d) == 2 and d[0] == "N" and d[1] in self.fixed)
            if v is not None:
                return self.assign(self.vars[v], f"conv({v}, over={self.vars[v][1]}, "
                                   f"k={r.choice([1, 3, 5])}, bias={r.choice(['true', 'false'])})")
        v = self.pick(self._spatial)
        if v is None:
            return None
        dims = self.vars[v]
        (ch,) = set(dims) - {"N", "H", "W"} or {None}
        k, dil = r.choice([1, 3, 3, 5]), r.choice([1, 1, 2])
        over = " ".join(r.sample(["H", "W"], 2))
        if ch is None:
            return self.assign(dims, f"conv({v}, over={over}, k={k}, dilation={dil})")
        dst = ch if r.random() < 0.4 else self.new_dim()
        a, b = self.fixed[ch], self.fixed[dst]
        groups = r.choice([g for g in (1, 2, 3, a) if a % g == 0 and b % g == 0])
        out = tuple(dst if d == ch else d for d in dims)
        return self.assign(out, f"conv({v}, {ch} -> {dst}, over={over}, k={k}, "
                           f"dilation={dil}, groups={groups}, bias={r.choice(['true', 'false'])})")

    def pool(self) -> str | None:
        v = self.pick(self._spatial)
        if v is None:
            return None
        op = self.rng.choice(["avg_pool", "max_pool"])
        k = self.rng.choice([1, 3])
        if self.rng.random() < 0.3 and min(self.sizes["H"], self.sizes["W"]) >= 2:
            # a size-changing window: new run-time dims (non-local's sub-sampling)
            hs, ws = self.fresh("Hs"), self.fresh("Ws")
            dims = tuple({"H": hs, "W": ws}.get(d, d) for d in self.vars[v])
            return self.assign(dims, f"{op}({v}, over=H W, k=2, to={hs} {ws})", "p")
        return self.assign(self.vars[v], f"{op}({v}, over=H W, k={k}, stride=1, "
                           f"padding={k // 2})", "p")

    def norm(self) -> str | None:
        r = self.rng
        kind = r.choice(["layer", "layer_plain", "group", "batch"])
        if kind == "layer":
            v = self.pick(lambda d: bool(self.static(d)))
            if v is None:
                return None
            over = r.sample(self.static(self.vars[v]), 1)
            return self.assign(self.vars[v], f"layer_norm({v}, over={' '.join(over)})", "n")
        if kind == "layer_plain":
            v = self.pick(lambda d: len(d) > 1)
            if v is None:
                return None
            over = self.subset(self.vars[v], 2)
            return self.assign(self.vars[v], f"layer_norm({v}, over={' '.join(over)}, "
                               f"affine=false, eps={r.choice(['1e-5', '1e-3'])})", "n")
        if kind == "group":
            v = self.pick(lambda d: d[0] == "N" and bool(self.static(d)))
            if v is None:
                return None
            ch = r.choice(self.static(self.vars[v]))
            g = r.choice([g for g in (1, 2, 3, self.fixed[ch]) if self.fixed[ch] % g == 0])
            return self.assign(self.vars[v], f"group_norm({v}, groups={g}, channel={ch})", "n")
        v = self.pick(lambda d: bool(self.static(d)))
        if v is None:
            return None
        feat = r.choice(self.static(self.vars[v]))
        over = [d for d in self.vars[v] if d != feat]
        return self.assign(self.vars[v], f"batch_norm({v}, over={' '.join(over)})", "n")

    def contract(self) -> str | None:
        pairs = [(a, b) for a in self.vars for b in self.vars
                 if set(self.vars[a]) & set(self.vars[b]) - {"N"}
                 and "N" in self.vars[a] and "N" in self.vars[b]]
        if not pairs:
            return None
        a, b = self.rng.choice(pairs[-12:] if self.rng.random() < 0.6 else pairs)
        da, db = self.vars[a], self.vars[b]
        common = [d for d in da if d in db and d != "N"]
        over = self.rng.sample(common, self.rng.randint(1, len(common)))
        out = tuple(d for d in da if d not in over) + tuple(
            d for d in db if d not in da)
        return self.assign(out, f"contract({a}, {b}, over={' '.join(over)})", "c")

    def stack(self) -> str | None:
        a = self.pick(lambda d: len(d) <= 4)
        if a is None:
            return None
        same = [v for v, d in self.vars.items() if set(d) == set(self.vars[a])]
        b = self.rng.choice(same)
        s = self.fresh("S")
        self.fixed[s] = 2
        dims = self.vars[a]
        at = self.rng.randint(0, len(dims))
        at_text = "" if at == 1 else f", at={at}"
        name = self.assign((*dims[:at], s, *dims[at:]),
                           f"stack({a}, tanh({b}), as={s}{at_text})", "s")
        # fold the new dim back most of the time (SK's select-and-sum)
        if self.rng.random() < 0.7:
            w = self.assign(self.vars[name], f"softmax({name}, over={s})", "a")
            self.attention.append(w)
            return self.assign(dims, f"sum({w} * {name}, over={s})", "t")
        return name

    def concat(self) -> str | None:
        a = self.pick(lambda d: len(d) > 1)
        if a is None:
            return None
        same = [v for v, d in self.vars.items() if set(d) == set(self.vars[a])]
        b = self.rng.choice(same)
        along = self.rng.choice([d for d in self.vars[a] if d != "N"])
        new = self.fresh("K")
        if along in self.fixed:
            self.fixed[new] = 2 * self.fixed[along]
        out = tuple(new if d == along else d for d in self.vars[a])
        return self.assign(out, f"concat({a}, {b}, along={along}, as={new})", "k")

    def merge(self) -> str | None:
        v = self.pick(lambda d: len([x for x in d if x != "N"]) >= 2)
        if v is None:
            return None
        dims = self.vars[v]
        p, q = self.rng.sample([d for d in dims if d != "N"], 2)
        new = self.fresh("P")
        if p in self.fixed and q in self.fixed:
            self.fixed[new] = self.fixed[p] * self.fixed[q]
        self.merged[new] = (p, q)
        first = min(dims.index(p), dims.index(q))
        out = tuple(new if i == first else d for i, d in enumerate(dims) if d not in (p, q)
                    or i == first)
        name = self.assign(out, f"merge({v}, {p} {q} -> {new})", "m")
        if self.rng.random() < 0.6 or new not in self.fixed:
            body = self.rng.choice([f"softmax({name}, over={new})", f"relu({name})",
                                    f"layer_norm({name}, over={new}, affine=false)"])
            t = self.assign(out, body, "m")
            back = tuple(x for d in out for x in ((p, q) if d == new else (d,)))
            like = f", like={v}" if not ({p, q} <= set(self.fixed)) else ""
            return self.assign(back, f"unmerge({t}, {new} -> {p} {q}{like})", "m")
        return name

    def expand(self) -> str | None:
        pairs = [(a, b) for a in self.vars for b in self.vars
                 if set(self.vars[a]) < set(self.vars[b])]
        if not pairs:
            return None
        a, b = self.rng.choice(pairs)
        return self.assign(self.vars[b], f"expand({a}, like={b}) * sigmoid({b})", "e")

    def repeat(self) -> str | None:
        v = self.pick(lambda d: bool(self.static(d)))
        if v is None:
            return None
        dims = self.vars[v]
        ch = self.rng.choice(self.static(dims))
        count = self.rng.randint(1, 3)
        layer = self.fresh("L")
        rep = self.fresh("n")
        self.hyper[rep] = count
        self.stmts.append(f"layer {layer} = dense({ch} -> {ch})")
        t = self.assign(dims, f"tanh({v})", "t")
        others = [d for d in dims if d != "N"]
        over = self.rng.choice(others)
        body = self.rng.choice([
            f"{t} = tanh({layer}({t})) + {t}",
            f"{t} = {t} * sigmoid({layer}(mean({t}, over={over}))) "
            if over != ch else f"{t} = softmax({layer}({t}), over={ch}) * {t} + {t}",
            f"{t} = layer_norm({layer}({t}), over={ch}, affine=false) + 0.5 * {t}",
        ])
        self.stmts.append(f"repeat {rep} {{ {body} }}")
        return t

    STATEMENTS = ("unary", "binary", "reduce", "softmax", "dense", "conv", "pool", "norm",
                  "contract", "stack", "concat", "merge", "expand", "repeat")
    WEIGHTS = (3, 4, 2, 2, 3, 2, 1, 2, 2, 1, 1, 1, 1, 1)

    def build(self) -> Graph:
        steps = self.rng.randint(3, 9)
        for _ in range(steps):
            for _ in range(10):  # a kind that does not apply here: draw again
                kind = self.rng.choices(self.STATEMENTS, self.WEIGHTS)[0]
                if getattr(self, kind)() is not None:
                    break
        made = [v for v in self.vars if v not in dict(self.inputs)]
        outs = [made[-1]] if made else ["x"]
        if len(made) > 2 and self.rng.random() < 0.3:
            outs.append(self.rng.choice(made[:-1]))
        return Graph(hyper=dict(self.hyper), sizes=dict(self.sizes), inputs=self.inputs,
                     stmts=self.stmts, outputs=outs, attention=self.attention[-2:],
                     seed=self.seed)


def generate(seed: int) -> Graph:
    return Gen(seed).build()


# ---- the second family: each op's own samples, in a random context ----
OP_SIZES = {"N": 2, "C": 6, "H": 5, "W": 7, "T": 3}  # tests/test_ops.py's, where unset


def _attr_text(arg: Any, value: Any) -> str:
    from attncc.ops.base import ChoiceArg, Map

    if isinstance(value, Map):
        side = lambda ds: " ".join(ds) if ds else "()"  # noqa: E731
        return f"{side(value.src)} -> {side(value.dst)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(value) if value else "()"
    if isinstance(arg, ChoiceArg):
        return f'"{value}"'
    return str(value)


def sample_call(op: Any, sample: Any) -> tuple[list[tuple[str, tuple[str, ...]]], str] | None:
    """The sample as spec text: its inputs and one call of the op; None when it has an int64
    index input or no tensor input (text cannot declare those here)."""
    if not sample.inputs or not all(isinstance(t, tuple) for t in sample.inputs):
        return None
    sig = op.signature
    inputs = [(f"x{i}", tuple(dims)) for i, dims in enumerate(sample.inputs)]
    args, kw = [], []
    for i, (name, _) in enumerate(inputs):
        slot = sig.tensors[min(i, len(sig.tensors) - 1)]
        (kw if slot in sig.optional else args).append(
            f"{slot}={name}" if slot in sig.optional else name)
    for key, value in sample.attrs.items():
        text = _attr_text(sig.attrs.get(key), value)
        if key in sig.positional:
            args.append(text)
        else:
            kw.append(f"{key}={text}")
    return inputs, f"{op.name}({', '.join(args + kw)})"


def generate_from_sample(op: Any, sample: Any, seed: int) -> Graph | None:
    """One op's sample followed by a random chain over its output (and inputs)."""
    call = sample_call(op, sample)
    if call is None:
        return None
    inputs, expr = call
    sizes = {**OP_SIZES, **sample.sizes}
    in_dims = {d for _, ds in inputs for d in ds}
    rng = random.Random(seed)
    runtime = {d for d in ("N", "H", "W") if d in in_dims and d not in sample.sizes
               and rng.random() < 0.5}
    extra = [d for d in sizes if d not in in_dims and re.search(rf"\b{d}\b", expr)]
    # run-time N, H, W where the op allows (else every dim static, as tests/test_ops.py has
    # them); new dims the sample sizes declared with `dim` where the op needs that
    for dynamic, declare in ((runtime, False), (runtime, True), (set(), False), (set(), True)):
        hyper = {d: sizes[d] for d in sorted(in_dims - dynamic)}
        stmts = [f"dim {d} = {sizes[d]}" for d in extra] if declare else []
        stmts.append(f"y0 = {expr}")
        base = Graph(hyper=hyper, sizes={d: sizes[d] for d in sorted(in_dims)},
                     inputs=inputs, stmts=stmts, outputs=["y0"], seed=seed)
        try:
            ir = attncc.check(base.text(), **hyper)
        except attncc.AttnccError:
            continue
        out = ir.node(ir.outputs[0][1]).out
        if out.dtype != "float32":  # indices (topk_index): the sample alone
            return base
        out_dims = out.dims
        g = Gen(seed)
        g.inputs, g.hyper, g.sizes = inputs, dict(hyper), base.sizes
        g.fixed = {d: s for d, s in ir.dims.items() if s is not None}
        g.vars = {**dict(inputs), "y0": out_dims}
        g.stmts, g.attention, g.n = list(stmts), [], 0
        for _ in range(rng.randint(1, 4)):
            for _ in range(10):
                kind = g.rng.choices(g.STATEMENTS, g.WEIGHTS)[0]
                if kind not in ("conv", "pool", "merge") and getattr(g, kind)() is not None:
                    break
        last = [v for v in g.vars if v not in dict(inputs)][-1]
        return Graph(hyper=g.hyper, sizes=base.sizes, inputs=inputs, stmts=g.stmts,
                     outputs=["y0"] + ([last] if last != "y0" else []),
                     attention=g.attention[-1:], seed=seed)
    return None


def sample_cases() -> list:
    """Every user op's samples that text can state (not the int64-input and no-input ones)."""
    from attncc.ops import all_ops

    return [pytest.param(op, s, i, id=f"{name}-{i}") for name, op in sorted(all_ops().items())
            if "internal" not in op.traits for i, s in enumerate(op.samples())
            if sample_call(op, s) is not None]


# ---- running a graph through the four backends ----
def _standalone(text: str, hyper: dict[str, int], folder: Path) -> Any:
    """`attncc compile -o`: the file it writes, imported as a module; returns the class."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "rand.attn"
    spec.write_text(text, encoding="utf-8")
    out = folder / "rand_block.py"
    sets = [a for k, v in hyper.items() for a in ("--set", f"{k}={v}")]
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli_main(["compile", str(spec), "-o", str(out), *sets])
    assert rc == 0, f"attncc compile -o failed with exit code {rc}"
    name = f"attncc_randgraph_{abs(hash(text)) % 10**12}"
    mod_spec = importlib.util.spec_from_file_location(name, out)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.R


def _scaled_compare(label: str, pair: tuple[str, str], want: h.Outputs, got: h.Outputs,
                    rtol: float = RTOL, atol: float = ATOL) -> list[str]:
    lines = []
    for key in want:
        finite = np.abs(want[key][np.isfinite(want[key])])
        scale = max(1.0, float(finite.max()) if finite.size else 1.0)
        lines += h.compare(label, pair, {key: want[key]}, {key: got[key]}, rtol, atol * scale)
    return lines


def _arbitrate(m: Any, x: dict[str, np.ndarray], results: dict[str, h.Outputs],
               mismatches: list[str]) -> list[str]:
    """Float32 backends that differ beyond the tolerance: ask float64 which is wrong.

    An ill-conditioned graph (a layer_norm over nearly equal values) leaves every float32
    backend ~1e-4 of the scale off, in different directions. The generated module in float64
    is the arbiter: a backend fails when its error is over 8 times the best backend's (and
    over 1e-5 of the scale); a wrong lowering is off by orders of magnitude more than
    rounding. When the float64 run itself is what is wrong (a wrong torch lowering), NumPy
    and onnxruntime are both far from it and fail, so nothing real is waved through.
    """
    import copy

    m64 = copy.deepcopy(m).double().eval()
    with torch.no_grad():
        args = [torch.from_numpy(x[m.ir.node(n).name]).double()
                if x[m.ir.node(n).name].dtype == np.float32
                else torch.from_numpy(x[m.ir.node(n).name]) for n in m.ir.inputs]
        y, att = m64(*args, return_attention=True)
    ys = y if isinstance(y, tuple) else (y,)
    ref = {k: v.numpy() for k, v in zip(h.output_keys(m.ir),
                                        [*ys, *(att[a] for a in m.ir.attention)], strict=True)}
    err = {}
    for b in ("numpy", "torch", "ort"):
        err[b] = max(float(np.nanmax(np.abs(results[b][k].astype(np.float64) - ref[k]),
                                     initial=0.0))
                     / max(1.0, float(np.nanmax(np.abs(ref[k]), initial=0.0))) for k in ref)
    best = min(err.values())
    bad = [b for b, e in err.items() if e > max(8 * best, 1e-5)]
    if not bad:
        return []
    return [*mismatches, "float64 arbiter: error over the scale " + ", ".join(
        f"{b} {e:.3g}" for b, e in err.items()) + f"; off: {', '.join(bad)}"]


def check_graph(text: str, hyper: dict[str, int], sizes: dict[str, int], folder: Path,
                seed: int = 0, finite: bool = True) -> tuple[list[str], set[str]]:
    """Failure lines ([] when all four backends agree) and the ops the compiled IR holds.

    `finite`: the outputs must be finite too (the first family guards log and sqrt; an op's
    own samples may take log of a negative number, where every backend gives NaN)."""
    m = h.randomize_(attncc.compile(text, seed=seed, **hyper), seed + 1)
    ops = {m.ir.node(n).op for n in m.ir.graph.nodes}
    x = h.make_inputs(m.ir, sizes, seed=seed + 2)

    def standalone(module: Any, inputs: dict[str, np.ndarray]) -> h.Outputs:
        block = _standalone(text, hyper, folder)()
        block.load_state_dict(module.state_dict(), strict=True)
        block.eval()
        with torch.no_grad():
            args = [torch.from_numpy(inputs[module.ir.node(n).name]) for n in module.ir.inputs]
            y, att = block(*args, return_attention=True)
        ys = y if isinstance(y, tuple) else (y,)
        return {k: v.numpy() for k, v in zip(
            h.output_keys(module.ir), [*ys, *(att[a] for a in module.ir.attention)],
            strict=True)}

    results: dict[str, h.Outputs] = {}
    lines: list[str] = []
    for name, run in (("numpy", h.run_numpy), ("torch", h.run_torch), ("ort", h.run_ort),
                      ("standalone", standalone)):
        try:  # a backend that raises on a well-typed block is a failure like a mismatch
            results[name] = run(m, x)
        except Exception as err:
            lines.append(f"random graph: {name} raised {type(err).__name__}: {err}")
    mismatches: list[str] = []
    for pair in (("numpy", "torch"), ("numpy", "ort"), ("torch", "ort")):
        if pair[0] in results and pair[1] in results:
            mismatches += _scaled_compare("random graph", pair, results[pair[0]],
                                          results[pair[1]])
    if mismatches and len(results) == 4:
        mismatches = _arbitrate(m, x, results, mismatches)
    lines += mismatches
    if "torch" in results and "standalone" in results:  # the same source: the same numbers
        lines += _scaled_compare("random graph", ("torch", "standalone"), results["torch"],
                                 results["standalone"], 1e-6, 1e-7)
    for key, v in results.get("numpy", {}).items() if finite else ():
        if not np.isfinite(v).all():
            lines.append(f"random graph: numpy output `{key}` is not finite")
    return lines, ops


def shrink(graph: Graph, fails: Callable[[str], bool]) -> str:
    """Drop statements (and surplus outputs / attention marks) greedily while `fails` holds."""
    stmts, outs, att = list(graph.stmts), list(graph.outputs), list(graph.attention)
    assert fails(graph.text(stmts, outs, att))
    changed = True
    while changed:
        changed = False
        for i in reversed(range(len(stmts))):
            trial = stmts[:i] + stmts[i + 1:]
            candidates = [outs]
            defined = [ln.split(" = ")[0].split()[-1] for ln in trial if " = " in ln
                       and not ln.startswith(("dim ", "layer ", "repeat "))]
            candidates += [[v] for v in defined[::-1] if [v] != outs]
            for o in candidates[:4]:
                if fails(graph.text(trial, o, att)):
                    stmts, outs, changed = trial, o, True
                    break
        if len(outs) > 1 and fails(graph.text(stmts, outs[:1], att)):
            outs, changed = outs[:1], True
        if att and fails(graph.text(stmts, outs, [])):
            att, changed = [], True
    return graph.text(stmts, outs, att)


def failing(graph_hyper: dict[str, int], sizes: dict[str, int], folder: Path,
            finite: bool = True):
    def fails(text: str) -> bool:
        try:
            return bool(check_graph(text, graph_hyper, sizes, folder, finite=finite)[0])
        except attncc.AttnccError:
            return False
    return fails


def _parse_header(text: str) -> tuple[dict[str, int], dict[str, int]]:
    hyper, sizes = {}, {}
    for line in text.splitlines():
        for tag, into in (("# hyper:", hyper), ("# sizes:", sizes)):
            if line.startswith(tag):
                into.update({k: int(v) for k, v in (kv.split("=") for kv in line[len(tag):]
                                                    .split())})
    return hyper, sizes


# ---- the tests ----
@pytest.mark.parametrize("seed", list(CI_SEEDS))
def test_random_graph_backends_agree(seed, tmp_path):
    g = generate(seed)
    text = g.text()
    try:
        lines, ops = check_graph(text, g.hyper, g.sizes, tmp_path)
    except attncc.AttnccError as err:
        pytest.fail(f"the generator wrote a block attncc rejects:\n{text}\n{err}")
    assert ops - {"input", "param"}, "an empty graph"
    if lines:
        minimal = shrink(g, failing(g.hyper, g.sizes, tmp_path / "shrink"))
        where = ""
        if os.environ.get(h.REPRO_ENV):  # keep it: copy it to regressions/ once fixed
            folder = Path(os.environ[h.REPRO_ENV])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"randgraph_seed{seed}.attn").write_text(minimal, encoding="utf-8")
            where = f"\nwritten to {folder / f'randgraph_seed{seed}.attn'}"
        pytest.fail("\n".join(lines) + f"\n\nspec:\n{text}\nshrunk to:\n{minimal}{where}")


@pytest.mark.parametrize(("op", "sample", "index"), sample_cases())
def test_op_sample_in_a_random_context(op, sample, index, tmp_path):
    """The op's own sample as spec text (run-time N, H, W where it allows), followed by a
    random chain of generic statements over its output: four backends agree."""
    g = generate_from_sample(op, sample, seed=index)
    assert g is not None, f"no text form of {op.name} sample {index} compiles: {sample}"
    lines, ops = check_graph(g.text(), g.hyper, g.sizes, tmp_path, finite=False)
    assert op.name in ops
    if lines:
        minimal = shrink(g, failing(g.hyper, g.sizes, tmp_path / "shrink", finite=False))
        pytest.fail("\n".join(lines) + f"\n\nspec:\n{g.text()}\nshrunk to:\n{minimal}")


def test_random_graphs_cover_the_generic_ops():
    """The CI seeds reach every op the generator can write."""
    seen: set[str] = set()
    for seed in CI_SEEDS:  # op calls in the text (the agreement test compiles each graph)
        text = generate(seed).text()
        seen |= set(re.findall(r"\b([a-z_0-9]+)\(", text))
        seen |= {op for op, sym in (("add", " + "), ("sub", " - "), ("mul", " * "),
                                    ("div", " / "), ("neg", " = -")) if sym in text}
    expected = {*UNARY, *GUARDED, *REDUCE, "softmax", "dense", "conv", "avg_pool", "max_pool",
                "layer_norm", "group_norm", "batch_norm", "contract", "stack", "concat",
                "merge", "unmerge", "expand", "add", "sub", "mul", "div", "maximum",
                "minimum"}
    missing = expected - seen
    assert not missing, f"the CI seeds never produce {sorted(missing)}"


def test_generator_is_deterministic():
    assert generate(7).text() == generate(7).text()
    assert generate(7).text() != generate(8).text()


def test_shrinker_finds_a_minimal_failing_block(tmp_path, monkeypatch):
    """A fault injected into onnxruntime's `sigmoid` results is shrunk to the op that shows it."""
    g = Graph(hyper={"C": 6, "D": 5}, sizes={"N": 2, "H": 3, "W": 4},
              inputs=[("x", ("N", "C", "H", "W"))],
              stmts=["t1 = relu(x)", "r2 = mean(t1, over=H W)", "t3 = sigmoid(r2)",
                     "t4 = x * t3", "t5 = tanh(t4)"], outputs=["t5"])
    real = h.run_ort

    def broken(module, inputs, model=None):
        out = real(module, inputs, model)
        if any(module.ir.node(n).op == "sigmoid" for n in module.ir.graph.nodes):
            out = {k: v + 1.0 for k, v in out.items()}
        return out

    monkeypatch.setattr(h, "run_ort", broken)
    minimal = shrink(g, failing(g.hyper, g.sizes, tmp_path))
    body = [ln.strip() for ln in minimal.splitlines()[4:-1]]
    # what `sigmoid` needs stays; the statements after it and the other output go
    assert body == ["t1 = relu(x)", "r2 = mean(t1, over=H W)", "t3 = sigmoid(r2)",
                    "return t3"], minimal


REGRESSION_FILES = sorted(REGRESSIONS.glob("*.attn"))


@pytest.mark.parametrize("path", REGRESSION_FILES, ids=[p.stem for p in REGRESSION_FILES])
def test_regression_replays(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    hyper, sizes = _parse_header(text)
    lines, _ = check_graph(text, hyper, sizes, tmp_path)
    assert not lines, "\n".join(lines)


# ---- long campaigns ----
def campaign(start: int, count: int, save: bool = True) -> int:
    import tempfile

    failures = 0
    ops: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(start, start + count):
            g = generate(seed)
            try:
                lines, seen = check_graph(g.text(), g.hyper, g.sizes, Path(tmp))
            except attncc.AttnccError as err:
                print(f"seed {seed}: rejected: {err}\n{g.text()}")
                failures += 1
                continue
            for op in seen:
                ops[op] = ops.get(op, 0) + 1
            if lines:
                failures += 1
                minimal = shrink(g, failing(g.hyper, g.sizes, Path(tmp) / "s"))
                print(f"seed {seed}: " + "\n".join(lines) + "\n" + minimal)
                if save:
                    REGRESSIONS.mkdir(parents=True, exist_ok=True)
                    (REGRESSIONS / f"seed{seed}.attn").write_text(minimal, encoding="utf-8")
    print(f"{count} graphs, {failures} failures, {len(ops)} ops: "
          + ", ".join(f"{k}×{v}" for k, v in sorted(ops.items())))
    return failures


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", type=int, default=1000)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    sys.exit(1 if campaign(a.start, a.count, not a.no_save) else 0)

