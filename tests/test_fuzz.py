"""Front-end fuzzing: no input crashes the compiler, hangs it, or gets a diagnostic off the text.

Every input (generated from the grammar, or a bundled spec damaged by tests/_fuzz.py's mutator:
deleted, duplicated, swapped and inserted tokens, random bytes, huge numbers, deep nesting,
very long lines, NUL and other control characters, non-UTF-8 bytes) must end in a compiled
block or an AttnccError whose spans lie inside the text, within a second of CPU. CI runs
2,000 seeded inputs; `make fuzz` runs long campaigns and saves failures under
tests/fuzz/regressions/, replayed here. The generator is plain seeded `random`: the grammar is
small enough to walk by hand, runs are reproducible by seed, and no dependency is needed.

tests/test_diagnostics.py's damaged-spec test (single-character edits and truncations of each
bundled spec, checked for internal errors) stays; this file adds token-level and structural
damage, the span and time checks, and generated programs.
"""

from __future__ import annotations

import random
import time

import _fuzz
import pytest

import attncc
from attncc.compiler import Source, compile_ir
from attncc.diagnostics import AttnccError, HyperparameterError, ParseError
from attncc.limits import using
from attncc.syntax import parse

SEEDS = range(8)
PER_SEED = 250  # 8 x 250 = 2,000 inputs


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Imports, the parser and the op registry load once, outside any input's time budget."""
    _fuzz.judge(_fuzz.SPECS[0].read_text("utf-8"), _fuzz.front_end)


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_inputs_end_in_a_block_or_a_diagnostic(seed):
    verdicts = [(d, _fuzz.judge(d, _fuzz.front_end)) for d in _fuzz.inputs(seed, PER_SEED)]
    failed = [(d, v) for d, v in verdicts if not v.ok]
    assert not failed, (f"{len(failed)} of {PER_SEED} inputs failed; first: "
                        f"{failed[0][1].outcome}\ninput: {failed[0][0][:500]!r}")
    outcomes = {v.outcome for _, v in verdicts}
    assert outcomes == {"compiled", "diagnostic"}, "the batch should reach both ends"


def test_the_generator_writes_mostly_valid_syntax():
    """A generator whose output never parses would test only the parser's first token."""
    rng = random.Random(0)
    parsed = compiled = 0
    for _ in range(200):
        text = _fuzz.Generator(rng).module()
        try:
            parse(text)
            parsed += 1
            compile_ir(Source(text, "<gen>"), {}, None)
            compiled += 1
        except ParseError:
            pass
        except AttnccError:
            pass
    assert parsed >= 190
    assert compiled >= 10


def test_the_mutator_makes_every_kind_of_damage():
    rng = random.Random(1)
    text = _fuzz.SPECS[0].read_text("utf-8")
    out = [_fuzz.mutate(rng, text) for _ in range(400)]
    assert any(isinstance(d, bytes) for d in out)
    strs = [d for d in out if isinstance(d, str)]
    assert any("\x00" in d for d in strs)
    assert any(len(d) > len(text) + 9_000 for d in strs)
    assert any("(" * 50 in d for d in strs)
    assert any("1" + "0" * 5000 in d for d in strs)
    assert len(set(out)) > 390


@pytest.mark.parametrize("path", sorted(_fuzz.REGRESSIONS.glob("*.attn")), ids=lambda p: p.stem)
def test_saved_regressions_still_pass(path):
    raw = path.read_bytes()
    try:
        data: str | bytes = raw.decode("utf-8")
    except UnicodeDecodeError:
        data = raw
    v = _fuzz.judge(data, _fuzz.front_end, path=str(path))
    assert v.ok, v.outcome


def test_the_shrinker_keeps_the_failure():
    small = _fuzz.shrink("block B(x: [N]) { y = relu(x @ x) }", lambda d: "@" in d)
    assert small == "@"


# ---- the crashes the fuzzer found, each pinned down ----
def _diag(text: str, error: type[AttnccError] = AttnccError, **hyper):
    with pytest.raises(error) as exc:
        compile_ir(Source(text, "<t>"), hyper, None)
    return exc.value.diagnostics[0]


def test_an_integer_of_thousands_of_digits_is_a_diagnostic():
    # was ValueError from int(): Python converts at most 4300 digits
    d = _diag("block B(x: [N, C]) {\n  y = x * 1" + "0" * 5000 + "\n  return y }",
              HyperparameterError)
    assert "too large" in d.message
    assert (d.span.line, d.span.col) == (2, 11)
    d = _diag("block B(x: [N, C]) {\n  example x: [2, " + "9" * 4400 + "]\n return x }",
              HyperparameterError)
    assert (d.span.line, d.span.col) == (2, 18)


@pytest.mark.parametrize("deep", [
    "-" * 5000 + "x",
    "x" + " + x" * 3000,
    "relu(" * 2000 + "x" + ")" * 2000,
    "x * 2" + " ** 1" * 3000,
    "dense(x, C -> C" + " + 1" * 3000 + ")",
], ids=["negation", "sum", "calls", "power", "dim-map"])
def test_deep_nesting_is_a_diagnostic_not_a_recursion_error(deep):
    # was RecursionError in the syntax tree builder (an internal error) or the elaborator
    start = time.thread_time()
    d = _diag(f"block B(x: [N, C]) {{\n  y = {deep}\n  return y\n}}", ParseError, C=4)
    assert "nested more than 100 levels" in d.message
    assert d.span.line == 2
    assert time.thread_time() - start < 1.0


def test_nesting_below_the_limit_compiles_and_the_limit_is_settable():
    text = "block B(x: [N, C]) {\n  y = " + "relu(" * 40 + "x" + ")" * 40 + "\n  return y\n}"
    compile_ir(Source(text, "<t>"), {"C": 4}, None)
    with using(nesting=20), pytest.raises(ParseError):
        compile_ir(Source(text, "<t>"), {"C": 4}, None)


@pytest.mark.parametrize("breaks", ["\x0b", "\x0c", "\x1c", "\u2028", "\x85", "\r"])
def test_spans_count_lines_as_the_lexer_does(breaks):
    # str.splitlines() also splits at these; the lexer, and now every span, at "\n" only
    text = (f"block B(x: [N, C]) {{  # a comment{breaks}with a break\n  y = relu(x)\n"
            "  return ) y\n}")
    with pytest.raises(ParseError) as exc:
        compile_ir(Source(text, "<t>"), {}, None)
    (d,) = exc.value.diagnostics
    assert (d.span.line, d.span.col) == (3, 10)
    assert "    3 |   return ) y\n" in str(exc.value)


def test_a_lone_surrogate_from_the_api_is_a_diagnostic():
    # was UnicodeEncodeError while hashing the text for the compile cache
    d = _diag("block B(x: [N, C]) {\n  y = relu(x)\ud800\n  return y\n}", ParseError)
    assert (d.span.line, d.span.col) == (2, 14)


def test_an_undecodable_file_points_at_the_byte(tmp_path):
    path = tmp_path / "bad.attn"
    path.write_bytes(b"block B(x: [N, C]) {\n  y = re\xfflu(x)\n  return y\n}\n")
    with pytest.raises(AttnccError) as exc:
        attncc.check(path)
    (d,) = exc.value.diagnostics
    assert "not UTF-8" in d.message
    assert (d.span.line, d.span.col) == (2, 9)
    assert "    2 |   y = re\ufffdlu(x)" in str(exc.value)


def test_an_undecodable_used_file_says_where_it_is_used(tmp_path):
    (tmp_path / "part.attn").write_bytes(b"block P(x: [N]) { return x }\n\xc3\n")
    main = tmp_path / "main.attn"
    main.write_text('use "part.attn"\nblock B(x: [N]) { return P(x) }\n')
    with pytest.raises(AttnccError) as exc:
        attncc.check(main)
    (d,) = exc.value.diagnostics
    assert (d.span.line, d.span.col) == (2, 1)
    assert d.notes == (f"`use`d at {main}:1:5",)
