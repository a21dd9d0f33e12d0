"""The safe evaluator for hyperparameter expressions: arithmetic and a fixed function table.

No Python `eval`: only literals, names looked up through a callback, the operators of the
language and the functions listed in FUNCTIONS are ever evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from attncc.diagnostics import HyperparameterError, NameError_, Span, did_you_mean
from attncc.syntax import ast

Scalar = int | float | bool

# results beyond this magnitude are refused: no spec needs them, and they exhaust memory later
_LIMIT = 2**62


@dataclass(frozen=True)
class Function:
    fn: Callable[..., Scalar]
    arity: tuple[int, int]  # min, max positional arguments
    doc: str


def _odd(t: Scalar) -> int:
    if not isinstance(t, int) or isinstance(t, bool):
        raise TypeError("odd() takes an integer; wrap it in int(...)")
    return t if t % 2 else t + 1


def _log2(v: Scalar) -> float:
    if v <= 0:
        raise ValueError(f"log2 of {v} is undefined")
    return math.log2(v)


def _log(v: Scalar) -> float:
    if v <= 0:
        raise ValueError(f"log of {v} is undefined")
    return math.log(v)


def _sqrt(v: Scalar) -> float:
    if v < 0:
        raise ValueError(f"sqrt of {v} is undefined")
    return math.sqrt(v)


FUNCTIONS: dict[str, Function] = {
    "int": Function(lambda v: int(v), (1, 1), "truncate towards zero"),
    "float": Function(lambda v: float(v), (1, 1), "convert to a real number"),
    "abs": Function(abs, (1, 1), "absolute value"),
    "round": Function(lambda v: round(v), (1, 1), "round half to even"),
    "floor": Function(math.floor, (1, 1), "largest integer not above"),
    "ceil": Function(math.ceil, (1, 1), "smallest integer not below"),
    "log2": Function(_log2, (1, 1), "base-2 logarithm"),
    "log": Function(_log, (1, 1), "natural logarithm"),
    "sqrt": Function(_sqrt, (1, 1), "square root"),
    "odd": Function(_odd, (1, 1), "t if t is odd else t + 1 (ECA's kernel-size rule)"),
    "max": Function(max, (2, 16), "largest argument"),
    "min": Function(min, (2, 16), "smallest argument"),
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


def binary(op: str, a: Scalar, b: Scalar, span: Span) -> Scalar:
    """Apply one arithmetic operator to two scalars, with the language's rules."""
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
        raise HyperparameterError(
            "division by zero", span, hints=("check the hyperparameters this expression uses",)
        ) from None
    except OverflowError:
        raise HyperparameterError("result too large", span) from None
    if isinstance(r, complex) or abs(r) > _LIMIT:
        raise HyperparameterError("result out of range", span)
    return r


def call(name: str, args: list[Scalar], span: Span) -> Scalar:
    """Call a function of the table on scalar arguments."""
    fn = FUNCTIONS.get(name)
    if fn is None:
        raise NameError_(f"unknown function `{name}`", span, hints=did_you_mean(name, FUNCTIONS))
    lo, hi = fn.arity
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise HyperparameterError(f"`{name}` takes {want} arguments, got {len(args)}", span)
    try:
        r = fn.fn(*args)
    except (TypeError, ValueError, OverflowError) as err:
        raise HyperparameterError(f"{name}(): {err}", span) from None
    if abs(r) > _LIMIT:
        raise HyperparameterError("result out of range", span)
    return r


def evaluate(expr: ast.Expr, lookup: Callable[[ast.Var], Scalar]) -> Scalar:
    """Evaluate a scalar expression; `lookup` resolves names (and raises for unknown ones)."""
    match expr:
        case ast.IntLit(value=v) | ast.FloatLit(value=v) | ast.BoolLit(value=v):
            return v
        case ast.Var():
            return lookup(expr)
        case ast.Neg(operand=o):
            v = evaluate(o, lookup)
            if isinstance(v, bool):
                raise HyperparameterError("cannot negate a bool", expr.span)
            return -v
        case ast.BinOp(op=op, left=a, right=b):
            return binary(op, evaluate(a, lookup), evaluate(b, lookup), expr.span)
        case ast.Call(func=f, args=args, kwargs=kws):
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
    try:
        return int(t)
    except ValueError:
        pass
    try:
        v = float(t)
    except ValueError:
        raise HyperparameterError(f"`{text}` is not a number or a bool") from None
    if not math.isfinite(v):
        raise HyperparameterError(f"`{text}` is not a finite number")
    return v
