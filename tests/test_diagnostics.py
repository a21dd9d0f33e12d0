"""Golden diagnostics: each tests/diagnostics/*.attn lists its exact rendering in `# expect:` lines.

A case file starts with comment lines: a description, optionally `# set: C=16 r=2.5`
(hyperparameters, parsed as `--set` values are) and the `# expect:` lines, one per line of the
rendered error, with the diagnostics folder left out of paths. Adding a diagnostic means adding
one file. After a deliberate change of wording, rewrite the expectations with
`ATTNCC_REGEN_GOLDEN=1 pytest tests/test_diagnostics.py` and review the diff.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import attncc
from attncc import cli
from attncc.compiler import example_shapes, read_source
from attncc.diagnostics import (
    AttnccError,
    CycleError,
    Diagnostic,
    HyperparameterError,
    InternalError,
    NameError_,
    ParseError,
    ShapeError,
    SignatureError,
    Span,
    did_you_mean,
    render,
)
from attncc.elaborate import MAX_DIAGNOSTICS
from attncc.hyper import parse_literal

ROOT = Path(__file__).resolve().parents[1]
CASES_DIR = Path(__file__).resolve().parent / "diagnostics"
CASES = sorted(CASES_DIR.glob("*.attn"))
SPECS = sorted((ROOT / "specs").glob("*.attn"))
EXPECT = "# expect:"
SET = "# set:"


# ---- reading a case ----
def header(path: Path) -> list[str]:
    """The leading comment lines of a case file."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def hyperparameters(path: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for line in header(path):
        if line.startswith(SET):
            for item in line[len(SET):].split():
                key, _, value = item.partition("=")
                out[key] = parse_literal(value)
    return out


def expected(path: Path) -> str:
    return "\n".join(line[len(EXPECT) + 1:] for line in header(path) if line.startswith(EXPECT))


def rendered(path: Path) -> tuple[str, AttnccError]:
    """Check the case and return its rendering with the cases folder left out of paths."""
    with pytest.raises(AttnccError) as exc:
        attncc.check(path, **hyperparameters(path))
    return strip_dir(str(exc.value)), exc.value


def strip_dir(text: str) -> str:
    return text.replace(f"{CASES_DIR}{os.sep}", "")


def regenerate(path: Path) -> None:
    """Rewrite the `# expect:` lines from the current output (twice: they shift line numbers)."""
    for _ in range(2):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [ln for ln in lines if not ln.startswith(EXPECT)]
        at = next(i for i, ln in enumerate(kept) if not ln.startswith("#"))
        try:
            text, _ = rendered(path)
        except pytest.fail.Exception:
            text = "(no error)"
        block = [f"{EXPECT} {ln}".rstrip() + "\n" for ln in text.splitlines()]
        path.write_text("".join(kept[:at] + block + kept[at:]), encoding="utf-8")


# ---- the golden cases ----
def test_there_are_enough_cases():
    assert len(CASES) >= 18
    for path in CASES:
        assert expected(path), f"{path.name} has no `# expect:` lines"
        assert header(path)[0].startswith("# ") and not header(path)[0].startswith(EXPECT), \
            f"{path.name} should open with a one-line description"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden(path):
    if os.environ.get("ATTNCC_REGEN_GOLDEN") == "1":
        regenerate(path)
    text, err = rendered(path)
    assert not isinstance(err, InternalError)
    assert text == expected(path)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_messages_follow_the_style(path):
    _, err = rendered(path)
    for diag in err.diagnostics:
        if diag.severity == "note":
            continue
        assert diag.span is not None, "every error points at the source"
        assert diag.message[0].islower() or diag.message[0] == "`", diag.message
        assert not diag.message.endswith("."), diag.message
        assert diag.message.count("`") % 2 == 0, diag.message
        for hint in diag.hints:
            assert not hint.endswith("."), hint


# ---- error classes: callers can catch precisely ----
@pytest.mark.parametrize(
    "case, cls",
    [
        ("syntax_unexpected_token", ParseError),
        ("syntax_unclosed_paren", ParseError),
        ("unknown_op", NameError_),
        ("unknown_name", NameError_),
        ("unknown_keyword", NameError_),
        ("wrong_arity", SignatureError),
        ("dims_mismatch", ShapeError),
        ("hyper_wrong_type", HyperparameterError),
        ("hyper_zero_dim", HyperparameterError),
        ("recursive_block", CycleError),
        ("use_cycle", CycleError),
        ("use_outside_folder", NameError_),
        ("several_errors", AttnccError),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_error_classes(case, cls):
    _, err = rendered(CASES_DIR / f"{case}.attn")
    assert type(err) is cls


# ---- several errors ----
def test_independent_errors_are_all_reported():
    path = CASES_DIR / "several_errors.attn"
    _, err = rendered(path)
    source = path.read_text().splitlines()
    line_of = {ln.split("=")[0].strip(): i for i, ln in enumerate(source, 1) if " = " in ln}
    # not `b`: it only uses the broken `a`, and a second error about it would be noise
    assert [d.span.line for d in err.diagnostics] == [line_of[v] for v in "acde"]
    assert [d.message.split("`")[0] for d in err.diagnostics] == [
        "unknown op or block ", "mean reduces ", "", "unknown name "]


def test_errors_stop_after_the_limit_with_a_note():
    body = "\n".join(f"  a{i} = sigmod(x)" for i in range(MAX_DIAGNOSTICS + 5))
    src = f"block B(x: [N, C]) {{\n{body}\n  return x\n}}\n"
    with pytest.raises(NameError_) as exc:
        attncc.check(src)
    diags = exc.value.diagnostics
    assert len(diags) == MAX_DIAGNOSTICS + 1
    assert [d.span.line for d in diags[:-1]] == list(range(2, MAX_DIAGNOSTICS + 2))
    assert diags[-1].severity == "note"
    assert diags[-1].message == f"too many errors; stopped after {MAX_DIAGNOSTICS}"
    assert str(exc.value).endswith(f"note: too many errors; stopped after {MAX_DIAGNOSTICS}\n"
                                   "  hint: fix these and check again")


def test_below_the_limit_there_is_no_note():
    body = "\n".join(f"  a{i} = sigmod(x)" for i in range(MAX_DIAGNOSTICS - 1))
    with pytest.raises(NameError_) as exc:
        attncc.check(f"block B(x: [N, C]) {{\n{body}\n  return x\n}}\n")
    assert len(exc.value.diagnostics) == MAX_DIAGNOSTICS - 1
    assert all(d.severity == "error" for d in exc.value.diagnostics)


def test_a_syntax_error_stops_at_the_first():
    with pytest.raises(ParseError) as exc:
        attncc.check("block B(x: [N, C]) {\n  y = relu(x;\n  z = @\n  w = (\n}\n")
    assert len(exc.value.diagnostics) == 1


def test_use_cycle_reads_the_same_from_a_relative_path(monkeypatch):
    monkeypatch.chdir(CASES_DIR)
    with pytest.raises(CycleError) as exc:
        attncc.check(Path("use_cycle.attn"))
    (diag,) = exc.value.diagnostics
    assert diag.message == (
        "`use` cycle: use_cycle.attn -> parts/cycle_back.attn -> use_cycle.attn")


# ---- spans on the IR ----
@pytest.mark.parametrize(
    "src",
    [*(p.read_text() for p in SPECS),
     "block B(x: [N, C]) {\n  y = x * 2 + 1\n  z = -y / 2.5\n  return z\n}"],
    ids=[*(p.stem for p in SPECS), "scalars"],
)
def test_every_ir_node_has_a_span(src):
    # at the spec's own example shape (SK's groups=32 needs C=64; ViT has D, not C)
    shapes = example_shapes(read_source(src)) or None
    ir = attncc.check(src, shapes=shapes, **({} if shapes else {"C": 16}))
    for n in ir.graph.nodes:
        span = ir.node(n).span
        assert isinstance(span, Span), (ir.node(n).name, span)
        assert span.line >= 1 and span.col >= 1


# ---- rendering ----
def test_render_underlines_the_span_and_expands_tabs():
    src = "block B(x: [N, C]) {\n\ty = sigmod(x)\n}\n"
    diag = Diagnostic("unknown op", Span("t.attn", 2, 6, 2, 12), ("did you mean `sigmoid`?",),
                      ("a note",))
    assert render(diag, {"t.attn": src}) == (
        "t.attn:2:6: error: unknown op\n"
        "    2 |     y = sigmod(x)\n"
        "      |         ^~~~~~\n"
        "  hint: did you mean `sigmoid`?\n"
        "  note: a note"
    )


def test_render_multi_line_span_gets_a_single_caret():
    src = "a = f(\n  x)\n"
    assert render(Diagnostic("m", Span("t", 1, 5, 2, 5)), {"t": src}).splitlines()[2] == \
        "      |     ^"


def test_render_without_source_or_span():
    assert render(Diagnostic("m", Span("t", 3, 1, 3, 2)), {}) == "t:3:1: error: m"
    assert render(Diagnostic("m", None, ("h",)), {}) == "error: m\n  hint: h"
    # a span past the end of the text (a stale source) still renders its header
    assert render(Diagnostic("m", Span("t", 9, 1, 9, 2)), {"t": "x\n"}) == "t:9:1: error: m"


def test_render_colour_only_on_request():
    diag = Diagnostic("m", Span("t", 1, 1, 1, 2))
    assert "\x1b[" not in render(diag, {"t": "x"})
    coloured = render(diag, {"t": "x"}, color=True)
    assert "\x1b[1;31merror:" in coloured and coloured.count("\x1b[0m") >= 3


@pytest.mark.parametrize(
    "word, candidates, hint",
    [
        ("sigmod", ["sigmoid", "relu"], "did you mean `sigmoid`?"),
        ("lg2", ["log2", "log", "abs"], "did you mean `log2` or `log`?"),
        ("xyz", ["b", "a"], "available names: `a`, `b`"),
        ("xyz", [f"op{i:02}" for i in range(30)], "available names: `op00`, "),
    ],
    ids=["close", "two-close", "none-close", "many"],
)
def test_did_you_mean(word, candidates, hint):
    (got,) = did_you_mean(word, candidates)
    assert got.startswith(hint)
    if len(candidates) > 24:
        assert got.endswith("and 6 more")


def test_did_you_mean_with_no_candidates_says_nothing():
    assert did_you_mean("x", []) == ()


def test_api_error_text_is_the_rendering():
    with pytest.raises(AttnccError) as exc:
        attncc.check("block B(x: [N, C]) {\n  y = sigmod(x)\n  return y\n}\n")
    assert str(exc.value) == exc.value.render()
    assert str(exc.value).startswith("<string>:2:7: error: unknown op or block `sigmod`\n")


# ---- the CLI: diagnostics on stderr, exit 1, never a traceback ----
def _cli_args(path: Path) -> list[str]:
    args = ["check", str(path)]
    for key, value in hyperparameters(path).items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_cli_prints_the_diagnostic_and_exits_1(path, capsys):
    code = cli.main(_cli_args(path))
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert strip_dir(err) == expected(path) + "\n"
    assert "Traceback" not in err


def test_cli_subprocess_has_no_traceback():
    path = CASES_DIR / "unknown_op.attn"
    exe = Path(sys.executable).with_name("attncc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attncc"]
    proc = subprocess.run([*cmd, *_cli_args(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, check=False, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert strip_dir(proc.stderr) == expected(path) + "\n"
    assert "Traceback" not in proc.stderr


# ---- robustness: damaged specs give diagnostics, never an internal error ----
def _damaged(text: str, seed: int, n: int) -> list[str]:
    """Truncations at token boundaries and single-character edits of a spec."""
    rng = random.Random(seed)
    cuts = [m.start() for m in re.finditer(r"[^\w\s]|\b\w", text)]
    out = [text[:c] for c in cuts[:: max(1, len(cuts) // n)]]
    alphabet = "()[]{},;:=-><*/+#\"'@. \nxCHW0"
    for _ in range(n):
        i = rng.randrange(len(text))
        if rng.random() < 0.5:
            out.append(text[:i] + text[i + 1:])  # a character deleted
        else:
            out.append(text[:i] + rng.choice(alphabet) + text[i + 1:])  # one replaced
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_damaged_specs_never_raise_internal_errors(spec):
    text = spec.read_text(encoding="utf-8")
    failures = []
    for damaged in _damaged(text, seed=sum(spec.stem.encode()), n=60):
        try:
            attncc.check(damaged, C=16)
        except InternalError as err:
            failures.append((damaged, err))
        except AttnccError as err:
            for diag in err.diagnostics:
                assert diag.message and "Traceback" not in diag.message
        except Exception as err:  # anything else is the bug this test looks for
            failures.append((damaged, err))
    assert not failures, f"{len(failures)} internal errors, first: {failures[0]!r}"
