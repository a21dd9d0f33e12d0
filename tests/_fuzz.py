"""Front-end fuzzing helpers: a grammar-aware generator, a mutator and the oracle.

The generator and the mutator are plain seeded `random.Random` code and do not import attncc:
their vocabulary (op names, keyword names) is read from the bundled specs' text. The oracle
(`judge`) compiles one input through the front end and says whether it ended well: a compiled
block, or an `AttnccError` whose diagnostics point inside the text.

Used by tests/test_fuzz.py (a bounded, seeded run) and tests/fuzz/campaign.py (`make fuzz`).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.attn"))
REGRESSIONS = ROOT / "tests" / "fuzz" / "regressions"

# one token of the language: names, numbers, strings, comments, operators, any other character
_TOKEN = re.compile(r'"[^"\n]*"|#[^\n]*|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|->|//|\*\*'
                    r"|\s+|.", re.S)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _vocabulary() -> tuple[list[str], list[str], list[str]]:
    """Op (call) names, keyword-argument names and every name token of the bundled specs."""
    calls, kwargs, names = set(), set(), set()
    for p in SPECS:
        text = "\n".join(line.split("#")[0] for line in p.read_text("utf-8").splitlines())
        calls |= set(re.findall(r"\b([a-z_]\w*)\(", text))
        kwargs |= set(re.findall(r"[(,]\s*([a-z_]\w*)\s*=(?!=)", text))
        names |= set(re.findall(r"[A-Za-z_]\w*", text))
    drop = {"block", "preset"}
    return sorted(calls - drop), sorted(kwargs), sorted(names)


CALLS, KWARGS, NAMES = _vocabulary()
DIMS = ["N", "C", "H", "W", "L", "K", "D", "T", "S"]
PUNCT = [*"()[]{},;:=+-*/%", "->", "//", "**", "#", '"', "\n"]
KEYWORDS = ["block", "use", "layer", "param", "dim", "example", "preset", "attention", "return",
            "repeat", "as", "true", "false", "seq"]
HUGE = ["9" * 400, "1" + "0" * 5000, "1e999", "1e-999", "0." + "0" * 300 + "1",
        "18446744073709551617", "4611686018427387905", "2**62", "10**18", "-9" * 3]


# ---- the grammar-aware generator ----
class Generator:
    """Random programs that follow the grammar (most are well formed; many are ill-typed)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, seq):
        return self.rng.choice(seq)

    def module(self) -> str:
        n = 1 + (self.rng.random() < 0.3)
        return "\n\n".join(self.block(f"B{i}") for i in range(n))

    def block(self, name: str) -> str:
        dims = self.rng.sample(DIMS[:6], self.rng.randint(1, 4))
        params = [f"x: [{', '.join(dims)}]"]
        if self.rng.random() < 0.3:
            params.append(f"y: [{', '.join(self.rng.sample(dims, len(dims)))}]")
        self.tensors, self.dims, self.scalars, self.layers = ["x"], list(dims), [], []
        for i in range(self.rng.randint(0, 3)):
            p = f"h{i}"
            self.scalars.append(p)
            kind = self.pick(["int", "float", "bool", "", "dim"])
            default = {"int": str(self.rng.randint(-2, 9)), "float": "0.5", "bool": "true",
                       "": str(self.rng.randint(1, 4)), "dim": ""}[kind]
            if kind == "dim" and self.rng.random() < 0.8:
                kind, default = "int", str(self.rng.randint(1, 9))
            params.append(p + (f": {kind}" if kind else "") + (f" = {default}" if default else ""))
        body = [self.stmt(depth=0) for _ in range(self.rng.randint(1, 8))]
        if self.rng.random() < 0.9:
            body.append(f"example x: [{', '.join(str(self.rng.randint(1, 9)) for _ in dims)}]")
        if self.rng.random() < 0.3:
            body.append(f"attention {self.pick(self.tensors)}")
        body.append(f"return {self.pick(self.tensors)}")
        inner = "\n  ".join(body)
        return f"block {name}({', '.join(params)}) {{\n  {inner}\n}}"

    def stmt(self, depth: int) -> str:
        r = self.rng.random()
        stage = self.pick(["", "", "squeeze ", "excite ", "gate ", "aggregate "])
        if r < 0.45:
            t = f"t{len(self.tensors)}"
            s = f"{stage}{t} = {self.tensor_expr(2)}"
            self.tensors.append(t)
            return s
        if r < 0.55:
            name = f"l{len(self.layers)}"
            self.layers.append(name)
            return f"{stage}layer {name} = {self.call(layer=True)}"
        if r < 0.62:
            d = self.pick(["M", "R", "K", "G"])
            self.dims.append(d)
            return f"dim {d} = {self.scalar_expr(2)}"
        if r < 0.7:
            s = f"s{len(self.scalars)}"
            self.scalars.append(s)
            return f"{s} = {self.scalar_expr(3)}"
        if r < 0.76:
            dims = ", ".join(self.rng.sample(self.dims, min(len(self.dims), 2)))
            return f"param p{self.rng.randint(0, 5)}: [{dims}] = {self.pick(['ones', 'zeros'])}"
        if r < 0.82 and depth < 2:
            body = "\n".join(self.stmt(depth + 1) for _ in range(self.rng.randint(1, 3)))
            return f"{stage}repeat {self.scalar_expr(1)} {{\n{body}\n}}"
        if r < 0.86:
            a, b = f"t{len(self.tensors)}", f"t{len(self.tensors) + 1}"
            self.tensors += [a, b]
            return f"{a}, {b} = split({self.pick(self.tensors[:-2])}, {self.dim_map()})"
        if r < 0.9:
            vals = ", ".join(f"{p} = {self.rng.randint(0, 9)}" for p in self.scalars[:2])
            return f"preset p{self.rng.randint(0, 3)}({vals})"
        if r < 0.95:
            return f"attention {self.pick(self.tensors)}"
        return ";"

    def scalar_expr(self, depth: int) -> str:
        if depth <= 0 or self.rng.random() < 0.35:
            return self.pick([str(self.rng.randint(0, 70)), f"{self.rng.random():.3g}",
                              *self.scalars, *self.dims, "true", "false"] or ["1"])
        r = self.rng.random()
        if r < 0.6:
            op = self.pick(["+", "-", "*", "/", "//", "%", "**"])
            return f"{self.scalar_expr(depth - 1)} {op} {self.scalar_expr(depth - 1)}"
        if r < 0.75:
            return f"({self.scalar_expr(depth - 1)})"
        if r < 0.85:
            return f"-{self.scalar_expr(depth - 1)}"
        fn = self.pick(["int", "float", "max", "min", "log2", "sqrt", "odd", "choose", "abs",
                        "floor", "ceil", "round", "log", "nope"])
        n = self.rng.randint(1, 3)
        return f"{fn}({', '.join(self.scalar_expr(depth - 1) for _ in range(n))})"

    def dim_map(self) -> str:
        a = self.pick(self.dims)
        rhs = self.pick([a, f"{a} // {self.rng.randint(1, 4)}", f"{a} * 2",
                         " ".join(self.rng.sample(DIMS, 2)), "()", self.pick(DIMS)])
        return f"{a} -> {rhs}"

    def tensor_expr(self, depth: int) -> str:
        r = self.rng.random()
        if depth <= 0 or r < 0.2:
            return self.pick(self.tensors)
        if r < 0.55:
            return self.call(layer=False, depth=depth)
        if r < 0.75:
            op = self.pick(["+", "-", "*", "/"])
            other = self.tensor_expr(depth - 1) if self.rng.random() < 0.7 else \
                self.scalar_expr(1)
            return f"{self.tensor_expr(depth - 1)} {op} {other}"
        if r < 0.85:
            dims = ", ".join(self.rng.sample(DIMS, self.rng.randint(1, 4)))
            return f"({self.tensor_expr(depth - 1)} as [{dims}])"
        if self.layers:
            return f"{self.pick(self.layers)}({self.tensor_expr(depth - 1)})"
        return self.pick(self.tensors)

    def call(self, layer: bool, depth: int = 1) -> str:
        if self.rng.random() < 0.6:
            return self.typed_call(layer, depth)
        fn = self.pick(CALLS)
        args = [] if layer else [self.tensor_expr(depth - 1)]
        if self.rng.random() < 0.2 and not layer:
            args.append(self.tensor_expr(depth - 1))
        for _ in range(self.rng.randint(0, 3)):
            r = self.rng.random()
            if r < 0.35:
                args.append(self.dim_map())
            elif r < 0.7:
                over = " ".join(self.rng.sample(self.dims, min(len(self.dims),
                                                               self.rng.randint(1, 2))))
                args.append(f"{self.pick(KWARGS)}={over}")
            else:
                args.append(f"{self.pick(KWARGS)}={self.scalar_expr(1)}")
        return f"{fn}({', '.join(args)})" if args or self.rng.random() < 0.7 else fn


    def typed_call(self, layer: bool, depth: int) -> str:
        """A call of a common op with arguments of the kinds it takes."""
        d = self.pick(self.dims)
        over = " ".join(self.rng.sample(self.dims, self.rng.randint(1, min(2, len(self.dims)))))
        args = {
            "relu": "", "sigmoid": "", "tanh": "", "softmax": f"over={d}",
            "mean": f"over={over}", "sum": f"over={over}", "max": f"over={over}",
            "dense": f"{d} -> {self.pick([d, f'{d} // 2', f'{d} * 2', 'M', '3'])}",
            "conv": f"{d} -> {d}, over={over}, k={self.pick(['1', '3', 'odd(2)'])}",
            "layer_norm": f"over={d}", "batch_norm": f"over={over}",
            "l2": f"over={d}", "stop_gradient": "",
        }
        fn = self.pick(sorted(args))
        parts = [] if layer else [self.tensor_expr(depth - 1)]
        if args[fn]:
            parts.append(args[fn])
        if layer and not parts:
            return fn
        return f"{fn}({', '.join(parts)})"


# ---- the mutator ----
def _random_token(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return rng.choice(PUNCT)
    if r < 0.6:
        return rng.choice(NAMES)
    if r < 0.75:
        return rng.choice(KEYWORDS)
    if r < 0.85:
        return rng.choice(HUGE)
    return str(rng.randint(0, 1000))


def mutate(rng: random.Random, text: str) -> str | bytes:
    """One to four damaging edits of `text`; bytes when the edit is not valid UTF-8."""
    toks = tokens(text) or [""]
    kinds = ["delete", "duplicate", "swap", "insert", "replace", "bytes", "huge", "nest",
             "long", "nul", "truncate", "deep_ops", "splice"]
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(kinds)
        i = rng.randrange(len(toks))
        j = rng.randrange(len(toks))
        if kind == "delete":
            del toks[i: i + rng.randint(1, 3)]
        elif kind == "duplicate":
            toks[i:i] = toks[i: i + rng.randint(1, 6)]
        elif kind == "swap":
            toks[i], toks[j] = toks[j], toks[i]
        elif kind == "insert":
            toks.insert(i, _random_token(rng))
        elif kind == "replace":
            toks[i] = _random_token(rng)
        elif kind == "huge":
            nums = [k for k, t in enumerate(toks) if t[:1].isdigit()]
            toks[rng.choice(nums) if nums else i] = rng.choice(HUGE)
        elif kind == "nest":
            n = rng.choice([50, 200, 1000, 5000])
            open_, close = rng.choice([("(", ")"), ("[", "]"), ("{", "}"), ("-", "")])
            toks[i:i] = [open_ * n, rng.choice(["1", "x", "C"]), close * n * (rng.random() < .8)]
        elif kind == "deep_ops":
            n = rng.choice([100, 1000, 5000])
            toks[i:i] = [rng.choice([" + 1", " * x", " ** 2", " // 2", "(x) ", " as [C]"]) * n]
        elif kind == "long":
            toks.insert(i, rng.choice(["x", " ", "# c", "a_", "1"]) * rng.choice([10**4, 10**5]))
        elif kind == "nul":
            toks.insert(i, rng.choice(["\x00", "\ufeff", "\u2028", "\r", "\t", "\x0b", "é",
                                       "\U0001f600", "\ud800"]))
        elif kind == "truncate":
            toks = toks[:i]
        elif kind == "splice":
            other = tokens(rng.choice(SPECS).read_text("utf-8"))
            a = rng.randrange(len(other))
            toks[i:i] = other[a: a + rng.randint(1, 40)]
        toks = toks or [""]
    out = "".join(toks)
    if rng.random() < 0.08:
        raw = out.encode("utf-8", "surrogatepass")
        k = rng.randrange(len(raw) + 1)
        return raw[:k] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + raw[k:]
    return out


# ---- the oracle ----
@dataclass
class Verdict:
    ok: bool  # False: the bug the fuzzer looks for
    outcome: str  # "compiled", "diagnostic", or the failure
    seconds: float


def _span_ok(span, sources: dict[str, str], path: str, text: str) -> bool:
    src = sources.get(span.path, text if span.path == path else None)
    if src is None:
        return True  # a span in a file the error did not attach: nothing to check it against
    lines = src.split("\n")  # as the lexer counts lines
    if not 1 <= span.line <= len(lines) + 1 or span.end_line < span.line:
        return False
    width = len(lines[span.line - 1]) if span.line <= len(lines) else 0
    return 1 <= span.col <= width + 2 and (span.end_line > span.line or span.end_col >= span.col)


def judge(data: str | bytes, compile_fn: Callable[[str | bytes, str], object],
          path: str = "<fuzz>", budget: float = 1.0) -> Verdict:
    """Compile one input with `compile_fn(data, path)` and judge how it ended."""
    from attncc.diagnostics import AttnccError, InternalError

    # this thread's CPU time: the process's would also count torch's and onnxruntime's pool
    # threads, which may still spin after an earlier test's kernels
    start = time.thread_time()
    try:
        compile_fn(data, path)
        outcome, ok = "compiled", True
    except InternalError as err:
        outcome, ok = f"internal error: {err.diagnostics[0].message}", False
    except AttnccError as err:
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        bad = [d for d in err.diagnostics
               if d.span is not None and not _span_ok(d.span, err.sources, path, text)]
        msgs = [d.message for d in err.diagnostics]
        if bad:
            outcome, ok = f"span outside the text: {bad[0].span} ({bad[0].message})", False
        elif not all(msgs) or any("Traceback" in m for m in msgs):
            outcome, ok = f"empty or traceback message: {msgs}", False
        else:
            outcome, ok = "diagnostic", True
        str(err)  # rendering must not fail either
    except RecursionError:
        outcome, ok = "RecursionError", False
    except Exception as err:  # any other exception is the bug looked for
        outcome, ok = f"{type(err).__name__}: {err}"[:300], False
    seconds = time.thread_time() - start
    if ok and seconds > budget:
        outcome, ok = f"took {seconds:.2f} s of CPU (budget {budget} s)", False
    return Verdict(ok, outcome, seconds)


def inputs(seed: int, n: int) -> list[str | bytes]:
    """`n` fuzz inputs for `seed`: about a third generated, the rest mutated bundled specs."""
    rng = random.Random(seed)
    texts = [p.read_text("utf-8") for p in SPECS]
    out: list[str | bytes] = []
    for _ in range(n):
        if rng.random() < 0.35:
            g = Generator(rng).module()
            out.append(mutate(rng, g) if rng.random() < 0.3 else g)
        else:
            out.append(mutate(rng, rng.choice(texts)))
    return out


def shrink(data: str | bytes, fails: Callable[[str | bytes], bool],
           seconds: float = 60.0) -> str | bytes:
    """A smaller input that still fails: greedy removal of chunks, then of single characters,
    for at most `seconds` (the smallest failing input found by then)."""
    cur = data
    chunk = max(1, len(cur) // 2)
    end = time.monotonic() + seconds
    while chunk >= 1 and time.monotonic() < end:
        i, changed = 0, False
        while i < len(cur) and time.monotonic() < end:
            cand = cur[:i] + cur[i + chunk:]
            if cand and fails(cand):
                cur, changed = cand, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return cur


def front_end(data: str | bytes, path: str = "<fuzz>") -> object:
    """What `attncc check FILE` does with no options: read, take the `example` shapes, compile.

    Bytes are written to a file in a fresh temporary folder and read from there, so undecodable
    input goes through the file reader."""
    import tempfile

    from attncc.compiler import Source, compile_ir, example_shapes, read_source

    if isinstance(data, bytes):
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / "fuzz.attn"
            file.write_bytes(data)
            src = read_source(file)
            return compile_ir(src, {}, example_shapes(src) or None)
    src = Source(data, path)
    return compile_ir(src, {}, example_shapes(src) or None)
