"""The safe evaluator for hyperparameter expressions: arithmetic and a fixed function table.

No Python `eval`: only literals, names looked up through a callback, the operators of the
language and the functions listed in FUNCTIONS are ever evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from attncc.diagnostics import (
    HyperparameterError,
    NameError_,
    SignatureError,
    Span,
    did_you_mean,
    plural,
)
from attncc.syntax import ast

Scalar = int | float | bool

# results beyond this magnitude are refused: no spec needs them, and they exhaust memory later
_LIMIT = 2**62


@dataclass(frozen=True)
class Function:
    fn: Callable[..., Scalar]
    arity: tuple[int, int]  # min, max positional arguments
    doc: str
    bool_first: bool = False  # the first argument is a bool (a condition), the rest numbers


def _odd(t: Scalar) -> int:
    if not isinstance(t, int) or isinstance(t, bool):
        raise TypeError(f"needs an integer, got {t!r}; wrap its argument in `int(...)`")
    return t if t % 2 else t + 1


def _log2(v: Scalar) -> float:
    if v <= 0:
        raise ValueError(f"undefined for {v!r}; it needs a positive number")
    return math.log2(v)


def _log(v: Scalar) -> float:
    if v <= 0:
        raise ValueError(f"undefined for {v!r}; it needs a positive number")
    return math.log(v)


def _sqrt(v: Scalar) -> float:
    if v < 0:
        raise ValueError(f"undefined for {v!r}; it needs a number >= 0")
    return math.sqrt(v)


def _choose(c: Scalar, a: Scalar, b: Scalar) -> Scalar:
    return a if c else b


FUNCTIONS: dict[str, Function] = {
    "int": Function(int, (1, 1), "truncate towards zero"),
    "float": Function(float, (1, 1), "convert to a real number"),
    "abs": Function(abs, (1, 1), "absolute value"),
    "round": Function(round, (1, 1), "round half to even"),
    "floor": Function(math.floor, (1, 1), "largest integer not above"),
    "ceil": Function(math.ceil, (1, 1), "smallest integer not below"),
    "log2": Function(_log2, (1, 1), "base-2 logarithm"),
    "log": Function(_log, (1, 1), "natural logarithm"),
    "sqrt": Function(_sqrt, (1, 1), "square root"),
    "odd": Function(_odd, (1, 1), "t if t is odd else t + 1 (ECA's kernel-size rule)"),
    "max": Function(max, (2, 16), "largest argument"),
    "min": Function(min, (2, 16), "smallest argument"),
    "choose": Function(_choose, (3, 3), "choose(c, a, b): a if the bool c is true, else b",
                       bool_first=True),
}


def is_scalar(v: object) -> bool:
    return isinstance(v, (int, float, bool))


def type_name(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return type(v).__name__


def binary(op: str, a: Scalar, b: Scalar, span: Span, right: ast.Expr | None = None) -> Scalar:
    """Apply one arithmetic operator to two scalars, with the language's rules.

    `right` is the right operand's syntax, named in the hint when it divides by zero.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        raise HyperparameterError(f"cannot apply `{op}` to a bool", span)
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = a / b
        elif op == "//":
            r = a // b
        elif op == "%":
            r = a % b
        elif op == "**":
            if abs(b) > 64:
                raise OverflowError
            r = a**b
        else:  # pragma: no cover - the grammar has no other operators
            raise HyperparameterError(f"unknown operator `{op}`", span)
    except ZeroDivisionError:
        if isinstance(right, (ast.IntLit, ast.FloatLit)):
            hints: tuple[str, ...] = ()  # a literal 0: the message says it all
        elif right is not None:
            hints = (f"`{ast.unparse(right)}` is 0 here; check the hyperparameters it uses",)
        else:
            hints = ("check the hyperparameters this expression uses",)
        raise HyperparameterError("division by zero", span, hints=hints) from None
    except OverflowError:
        raise HyperparameterError("result too large", span, hints=(_RANGE_HINT,)) from None
    if isinstance(r, complex):
        raise HyperparameterError(f"`{op}` gives no real number for {a!r} and {b!r}", span)
    return in_range(r, span)


_RANGE_HINT = f"hyperparameter values are limited to ±2**{_LIMIT.bit_length() - 1}"


def in_range(r: Scalar, span: Span, what: str = "result") -> Scalar:
    """`r` itself, or an error when it is nan or beyond ±2**62 (infinities included)."""
    if isinstance(r, float) and math.isnan(r):
        raise HyperparameterError(f"{what} is not a number (nan)", span)
    if abs(r) > _LIMIT:
        raise HyperparameterError(f"{what} out of range", span, hints=(_RANGE_HINT,))
    return r


def call(name: str, args: list[Scalar], span: Span) -> Scalar:
    """Call a function of the table on scalar arguments."""
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise NameError_(f"unknown function `{name}`", span,
                         hints=did_you_mean(name, FUNCTIONS, "function"))
    lo, hi = fn.arity
    if not lo <= len(args) <= hi:
        want = plural(lo, "argument") if lo == hi else f"{lo} to {hi} arguments"
        raise SignatureError(f"`{name}` takes {want}, got {len(args)}", span,
                             hints=(f"`{name}`: {fn.doc}",))
    if fn.bool_first and not isinstance(args[0], bool):
        raise HyperparameterError(f"`{name}` takes a bool first, got {type_name(args[0])}", span,
                                  hints=(f"`{name}`: {fn.doc}",))
    if any(isinstance(a, bool) for a in args[1 if fn.bool_first else 0 :]):
        raise HyperparameterError(f"`{name}` takes numbers, not a bool", span)
    try:
        r = fn.fn(*args)
    except (TypeError, ValueError, OverflowError) as err:
        raise HyperparameterError(f"`{name}`: {err}", span) from None
    return in_range(r, span)


def evaluate(expr: ast.Expr, lookup: Callable[[ast.Var], Scalar]) -> Scalar:
    """Evaluate a scalar expression; `lookup` resolves names (and raises for unknown ones)."""
    match expr:
        case ast.BoolLit(value=v):
            return v
        case ast.IntLit(value=v) | ast.FloatLit(value=v):
            return in_range(v, expr.span, "number")
        case ast.Var():
            return lookup(expr)
        case ast.Neg(operand=o):
            v = evaluate(o, lookup)
            if isinstance(v, bool):
                raise HyperparameterError("cannot negate a bool", expr.span)
            return -v
        case ast.BinOp(op=op, left=a, right=b):
            return binary(op, evaluate(a, lookup), evaluate(b, lookup), expr.span, right=b)
        case ast.Call(func=f, args=args, kwargs=kws):
            if f.name not in FUNCTIONS:  # before its arguments: the name is the first problem
                return call(f.name, [], f.span)
            if kws:
                raise HyperparameterError(
                    f"`{f.name}` takes no keyword arguments here", kws[0].span
                )
            return call(f.name, [evaluate(a, lookup) for a in args], expr.span)
    raise HyperparameterError(
        f"`{ast.unparse(expr)}` is not a number", expr.span,
        hints=("hyperparameter expressions use numbers, names, + - * / // % ** and "
               + ", ".join(FUNCTIONS),),
    )


def parse_literal(text: str) -> Scalar:
    """A value given on the command line or as a keyword (`--set r=8`): int, float or bool."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    # ASCII digits only: Python's int() and float() also take `1_000` and other scripts' digits
    if _INT_TEXT.fullmatch(t):
        v: Scalar = int(t)
    elif _FLOAT_TEXT.fullmatch(t):
        v = float(t)
    else:
        raise HyperparameterError(
            f"`{text}` is not a number or a bool",
            hints=("give an integer (`8`), a number (`0.5`, `1e-3`) or `true`/`false`",))
    if isinstance(v, float) and not math.isfinite(v):
        raise HyperparameterError(f"`{text}` is not a finite number")
    if abs(v) > _LIMIT:
        raise HyperparameterError(f"`{text}` is out of range", hints=(_RANGE_HINT,))
    return v


_INT_TEXT = re.compile(r"[-+]?[0-9]+", re.ASCII)
_FLOAT_TEXT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?", re.ASCII)
