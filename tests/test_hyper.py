"""The safe evaluator of hyperparameter expressions: arithmetic, functions, refusals, literals."""

from __future__ import annotations

import ast as pyast
import builtins
import inspect
import math
from collections.abc import Mapping
from pathlib import Path

import pytest

import attncc
from attncc import hyper
from attncc.diagnostics import (
    AttnccError,
    HyperparameterError,
    NameError_,
    ParseError,
    SignatureError,
    Span,
)
from attncc.syntax import ast, parse

ROOT = Path(__file__).resolve().parents[1]
SPAN = Span("t.attn", 1, 1, 1, 2)


def expr_of(text: str) -> ast.Expr:
    """`text` parsed as the value of `y = text`, which starts at line 2, column 5."""
    (block,) = parse(f"block B(x: [N, C]) {{\ny = {text}\n}}", "t.attn").blocks
    return block.body[0].value


def ev(text: str, **env: hyper.Scalar) -> hyper.Scalar:
    return hyper.evaluate(expr_of(text), _lookup(env))


def _lookup(env: Mapping[str, hyper.Scalar]):
    def lookup(var: ast.Var) -> hyper.Scalar:
        if var.name not in env:
            raise NameError_(f"unknown name `{var.name}`", var.span)
        return env[var.name]

    return lookup


def refusal(text: str, error: type[AttnccError] = HyperparameterError, **env):
    """The single diagnostic of evaluating `text`, which must raise `error`."""
    with pytest.raises(error) as exc:
        ev(text, **env)
    (diag,) = exc.value.diagnostics
    return diag


# ---- arithmetic ----
@pytest.mark.parametrize(
    "text, value",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 * 3 % 4", 2),
        ("7 // 2", 3),
        ("-7 // 2", -4),  # floor division, as in Python
        ("7 / 2", 3.5),
        ("8 / 4", 2.0),
        ("7 % 3", 1),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-2 ** 2", -4),  # unary minus binds looser than **
        ("(-2) ** 2", 4),
        ("2 ** 3 ** 2", 512),  # ** groups to the right
        ("--3", 3),
        ("1.5 * 2", 3.0),
        ("1e-3 * 1000", 1.0),
        ("C // r", 4),
        ("C // r * r", 64),
        ("C / r", 4.0),
        ("max(C // r, 8)", 8),
        ("true", True),
    ],
    ids=str,
)
def test_arithmetic(text, value):
    got = ev(text, C=64, r=16)
    assert got == value
    assert type(got) is type(value)  # `/` gives a float even when it divides evenly


@pytest.mark.parametrize(
    "text, value",
    [
        ("log2(8)", 3.0),
        ("log2(C)", 8.0),
        ("log(1)", 0.0),
        ("sqrt(16)", 4.0),
        ("int(3.9)", 3),
        ("int(-3.9)", -3),  # truncates towards zero
        ("float(2)", 2.0),
        ("abs(-2)", 2),
        ("abs(-2.5)", 2.5),
        ("round(2.5)", 2),  # half to even
        ("round(3.5)", 4),
        ("floor(-2.5)", -3),
        ("ceil(2.1)", 3),
        ("odd(4)", 5),
        ("odd(5)", 5),
        ("odd(0)", 1),
        ("max(1, 5, 3)", 5),
        ("min(2, 1)", 1),
        ("max(1, 2.5)", 2.5),
    ],
    ids=str,
)
def test_functions(text, value):
    got = ev(text, C=256)
    assert got == value and type(got) is type(value)


ECA_RULE = "odd(int(abs((log2(C) + b) / gamma)))"


@pytest.mark.parametrize(
    "C, k",
    [(16, 3), (64, 3), (128, 5), (256, 5), (512, 5), (1024, 5), (2048, 7), (4096, 7)],
    ids=lambda v: f"C={v}" if v > 8 else f"k={v}",
)
def test_eca_kernel_rule(C, k):
    # ECA-Net's code: t = int(abs((log2(C) + b) / gamma)); k = t if t % 2 else t + 1
    t = int(abs((math.log2(C) + 1) / 2))
    assert (t if t % 2 else t + 1) == k
    assert ev(ECA_RULE, C=C, b=1, gamma=2) == k


@pytest.mark.parametrize("C, k", [(64, 3), (256, 5), (2048, 7)], ids=["C=64", "C=256", "C=2048"])
def test_eca_spec_uses_the_rule(C, k):
    ir = attncc.check(ROOT / "specs" / "eca.attn", C=C)
    (conv,) = [ir.node(n) for n in ir.graph.nodes if ir.node(n).op == "conv"]
    assert conv.attrs["k"] == k


def test_eca_rule_with_other_gamma_and_b():
    assert ev(ECA_RULE, C=256, b=1, gamma=3) == 3  # int(9 / 3) = 3, odd
    assert ev(ECA_RULE, C=256, b=2, gamma=1) == 11  # int(10) = 10 -> 11


# ---- refusals ----
def test_unknown_function_with_did_you_mean():
    diag = refusal("lg2(C)", NameError_, C=8)
    assert diag.message == "unknown function `lg2`"
    assert diag.hints == ("did you mean `log2` or `log`?",)
    assert (diag.span.line, diag.span.col, diag.span.end_col) == (2, 5, 8)  # the name


def test_unknown_function_without_close_match_lists_the_table():
    diag = refusal("frobnicate(1)", NameError_)
    (hint,) = diag.hints
    assert hint.startswith("available functions: `abs`, `ceil`")
    assert all(f"`{name}`" in hint for name in hyper.FUNCTIONS)


@pytest.mark.parametrize(
    "text, span, hint",
    [
        ("1 / 0", (5, 10), None),
        ("C // r", (5, 11), "`r` is 0 here; check the hyperparameters it uses"),
        ("1 + C % (r * 2)", (9, 20), "`r*2` is 0 here; check the hyperparameters it uses"),
        ("C / (r - r)", (5, 16), "`r-r` is 0 here; check the hyperparameters it uses"),
    ],
    ids=["literal", "name", "product", "difference"],
)
def test_division_by_zero(text, span, hint):
    diag = refusal(text, C=8, r=0)
    assert diag.message == "division by zero"
    assert (diag.span.col, diag.span.end_col) == span
    assert diag.hints == ((hint,) if hint else ())


@pytest.mark.parametrize(
    "text, message",
    [
        ("2 ** 63", "result out of range"),
        ("-(2 ** 62) - 2 ** 62", "result out of range"),
        ("10 ** 100", "result too large"),  # refused before Python computes it
        ("2 ** 2 ** 2 ** 2 ** 2", "result too large"),  # 2 ** 65536, never computed
        ("2.0 ** 1000", "result too large"),
        ("1e18 * 1e10", "result out of range"),
        ("1e300 * 1e10", "number out of range"),  # the literal is refused first
        ("4611686018427387904 * 4", "result out of range"),
        ("1e400", "number out of range"),
        ("99999999999999999999", "number out of range"),
        ("int(1e18) * 10", "result out of range"),
        ("(-8) ** 0.5", "`**` gives no real number for -8 and 0.5"),
    ],
    ids=str,
)
def test_huge_results_are_refused(text, message):
    diag = refusal(text)
    assert diag.message == message


@pytest.mark.parametrize(
    "text, message",
    [
        ("log2(1, 2)", "`log2` takes 1 argument, got 2"),
        ("int()", "`int` takes 1 argument, got 0"),
        ("max(1)", "`max` takes 2 to 16 arguments, got 1"),
        ("min(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)",
         "`min` takes 2 to 16 arguments, got 17"),
    ],
    ids=["too-many", "none", "too-few", "over-the-limit"],
)
def test_wrong_arity(text, message):
    diag = refusal(text, SignatureError)
    assert diag.message == message
    assert diag.hints and diag.hints[0].startswith(f"`{text.split('(')[0]}`: ")


@pytest.mark.parametrize(
    "text, message",
    [
        ("log2(0)", "`log2`: undefined for 0; it needs a positive number"),
        ("log(-1)", "`log`: undefined for -1; it needs a positive number"),
        ("sqrt(-4)", "`sqrt`: undefined for -4; it needs a number >= 0"),
        ("odd(2.5)", "`odd`: needs an integer, got 2.5; wrap its argument in `int(...)`"),
        ("odd(log2(8))", "`odd`: needs an integer, got 3.0; wrap its argument in `int(...)`"),
        ("true + 1", "cannot apply `+` to a bool"),
        ("-false", "cannot negate a bool"),
        ("int(true)", "`int` takes numbers, not a bool"),
        ("max(1, 2, key=3)", "`max` takes no keyword arguments here"),
        ('"abc"', '`"abc"` is not a number'),
    ],
    ids=str,
)
def test_bad_arguments(text, message):
    assert refusal(text).message == message


def test_a_non_number_expression_lists_what_is_allowed():
    diag = refusal("f(x, over=H W)", NameError_, x=1)  # unknown function first
    assert diag.message == "unknown function `f`"
    diag = refusal("max(x, over=H W)", x=1)
    assert diag.message == "`max` takes no keyword arguments here"
    call = expr_of("dense(z, C -> D)")
    with pytest.raises(HyperparameterError) as exc:
        hyper.evaluate(call.args[1], _lookup({}))
    assert exc.value.diagnostics[0].message == "`C -> D` is not a number"
    assert "log2" in exc.value.diagnostics[0].hints[0]


def test_unknown_names_go_through_the_lookup():
    seen = []

    def lookup(var):
        seen.append(var.name)
        return 2

    assert hyper.evaluate(expr_of("a * b + max(c, a)"), lookup) == 6
    assert seen == ["a", "b", "c", "a"]
    assert refusal("a + zz", NameError_, a=1).message == "unknown name `zz`"


# ---- hostile input: never handed to Python ----
@pytest.mark.parametrize(
    "text",
    ["__import__(1)", "eval(1)", "exec(1)", "getattr(1, 2)", "open(1)", "compile(1, 2, 3)",
     "__class__(1)", "__builtins__(1)", "globals()", "breakpoint()"],
    ids=str,
)
def test_python_builtins_are_unknown_functions(text):
    diag = refusal(text, NameError_)
    assert diag.message == f"unknown function `{text.split('(')[0]}`"


@pytest.mark.parametrize("name", ["__class__", "__dict__", "__getitem__", "__init__", "fn"],
                         ids=str)
def test_dunder_lookups_in_the_function_table_fail(name):
    # FUNCTIONS is a plain dict: a dunder is a key it lacks, never an attribute lookup
    with pytest.raises(NameError_):
        hyper.call(name, [1], SPAN)


@pytest.mark.parametrize(
    "text",
    ['__import__("os").system("true")', "x.__class__", "C.__class__.__mro__", "(1).real",
     "f(x)[0]", "lambda: 1", "x if y else z", "[1, 2]", "{}"],
    ids=str,
)
def test_attribute_and_other_python_syntax_do_not_parse(text):
    with pytest.raises((ParseError, SignatureError)):
        expr_of(text)


def test_dunder_names_are_just_unknown_names(monkeypatch):
    src = "block B(x: [N, C], r: int = 2) {\n  k = __class__ + r\n  return x\n}"
    with pytest.raises(NameError_) as exc:
        attncc.check(src)
    assert exc.value.diagnostics[0].message == "unknown name `__class__`"


def test_hostile_spec_is_refused_before_anything_runs():
    src = 'block B(x: [N, C], r: int = 2) {\n  k = __import__("os")\n  return x\n}'
    with pytest.raises(AttnccError) as exc:
        attncc.check(src)
    assert exc.value.diagnostics[0].message == "unknown op or block `__import__`"


def test_evaluation_never_calls_python_eval_or_exec():
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the evaluator called a Python code evaluator")

    tree = expr_of(ECA_RULE + " + C ** 2 // 7 % 5 - abs(-1)")
    names = ("eval", "exec", "compile", "__import__")
    saved = {name: getattr(builtins, name) for name in names}
    # patched only around the evaluation itself: pytest's own machinery needs them
    for name in names:
        setattr(builtins, name, forbidden)
    try:
        value = hyper.evaluate(tree, _lookup({"C": 256, "b": 1, "gamma": 2}))
    finally:
        for name, fn in saved.items():
            setattr(builtins, name, fn)
    assert calls == []
    assert value == 5 + 65536 // 7 % 5 - 1


def test_the_evaluator_source_has_no_dynamic_code_paths():
    tree = pyast.parse(inspect.getsource(hyper))
    called = {n.func.id for n in pyast.walk(tree)
              if isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr", "globals",
                         "vars", "locals", "open"}
    attributes = {n.attr for n in pyast.walk(tree) if isinstance(n, pyast.Attribute)}
    assert not {a for a in attributes if a.startswith("__")} - {"__name__"}


def test_every_function_entry_is_callable_and_documented():
    for name, fn in hyper.FUNCTIONS.items():
        assert name.isidentifier() and not name.startswith("_")
        assert fn.doc and 1 <= fn.arity[0] <= fn.arity[1]


# ---- --set values ----
@pytest.mark.parametrize(
    "text, value",
    [
        ("8", 8),
        (" 16 ", 16),
        ("-3", -3),
        ("+3", 3),
        ("007", 7),
        ("2.5", 2.5),
        ("1e-3", 0.001),
        ("1E3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("-0.25", -0.25),
        ("true", True),
        ("False", False),
        ("TRUE", True),
    ],
    ids=str,
)
def test_parse_literal(text, value):
    got = hyper.parse_literal(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "`` is not a number or a bool"),
        ("abc", "`abc` is not a number or a bool"),
        ("1_000", "`1_000` is not a number or a bool"),
        ("\u0663", "`\u0663` is not a number or a bool"),  # ARABIC-INDIC DIGIT THREE
        ("\uff18", "`\uff18` is not a number or a bool"),  # FULLWIDTH DIGIT EIGHT
        ("0x10", "`0x10` is not a number or a bool"),
        ("2+2", "`2+2` is not a number or a bool"),
        ("__import__('os')", "`__import__('os')` is not a number or a bool"),
        ("nan", "`nan` is not a number or a bool"),
        ("inf", "`inf` is not a number or a bool"),
        ("1e999", "`1e999` is not a finite number"),
        ("99999999999999999999", "`99999999999999999999` is out of range"),
        ("yes", "`yes` is not a number or a bool"),
    ],
    ids=["empty", "word", "underscore", "arabic-indic", "fullwidth", "hex", "expression",
         "dunder", "nan", "inf", "overflow", "huge-int", "yes"],
)
def test_parse_literal_refusals(text, message):
    with pytest.raises(HyperparameterError) as exc:
        hyper.parse_literal(text)
    assert exc.value.diagnostics[0].message == message
