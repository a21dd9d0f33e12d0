"""The abstract syntax tree: frozen dataclasses, each with the span of its source text."""

from __future__ import annotations

from dataclasses import dataclass

from attncc.diagnostics import Span


@dataclass(frozen=True)
class Name:
    text: str
    span: Span


# ---- expressions ----
@dataclass(frozen=True)
class Var:
    name: str
    span: Span


@dataclass(frozen=True)
class IntLit:
    value: int
    span: Span


@dataclass(frozen=True)
class FloatLit:
    value: float
    span: Span


@dataclass(frozen=True)
class StrLit:
    value: str
    span: Span


@dataclass(frozen=True)
class BoolLit:
    value: bool
    span: Span


@dataclass(frozen=True)
class Empty:
    """`()`: no dim, on one side of a dim map."""

    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / // % **
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class NameSeq:
    """`H W`: dim names side by side."""

    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class DimMap:
    """`C -> C // r`: a dim (or `()`, or several) mapped to another."""

    src: Expr
    dst: Expr
    span: Span


@dataclass(frozen=True)
class Kwarg:
    name: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    func: Var
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True)
class TensorTypeAst:
    dims: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Rename:
    """`expr as [N, C, Hs, Ws]`: give the value's dims new names, position by position."""

    value: Expr
    dims: TensorTypeAst
    span: Span


Expr = (
    Var | IntLit | FloatLit | StrLit | BoolLit | Empty | BinOp | Neg | NameSeq | DimMap | Call
    | Rename
)


# ---- declarations and statements ----
@dataclass(frozen=True)
class ScalarType:
    name: str
    span: Span


@dataclass(frozen=True)
class Param:
    name: Name
    type: TensorTypeAst | ScalarType | None
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Assign:
    stage: Name | None
    target: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class MultiAssign:
    """`yh, yw = split(y, L -> H W)`: one name per piece of a value."""

    stage: Name | None
    targets: tuple[Name, ...]
    value: Expr
    span: Span


@dataclass(frozen=True)
class LayerDecl:
    stage: Name | None
    target: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    """`param alpha: [C] = ones`: a learnable tensor with named dims and an initialiser."""

    stage: Name | None
    target: Name
    dims: TensorTypeAst
    init: Expr | None
    span: Span


@dataclass(frozen=True)
class DimDecl:
    target: Name
    value: Expr
    span: Span


@dataclass(frozen=True)
class ExampleDecl:
    """`example x: [2, 64, 14, 14]`: a shape to compile, export and test the block at."""

    target: Name
    shape: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class PresetDecl:
    """`preset timm(r = 16, bias = false)`: named hyperparameter values (paper, code, timm)."""

    name: Name
    values: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True)
class AttentionDecl:
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Return:
    values: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Repeat:
    """`repeat stages { ... }`: the body unrolled `count` times at compile time.

    `keyword` is the span of the word `repeat`, where errors about the loop as a whole point.
    """

    stage: Name | None
    count: Expr
    body: tuple[Stmt, ...]
    span: Span
    keyword: Span


Stmt = (
    Assign | MultiAssign | LayerDecl | ParamDecl | DimDecl | ExampleDecl | PresetDecl
    | AttentionDecl | Return | Repeat
)


@dataclass(frozen=True)
class Block:
    name: Name
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class UseDecl:
    path: str
    span: Span
    path_span: Span | None = None  # the quoted path alone, where errors about it point


@dataclass(frozen=True)
class Module:
    path: str
    uses: tuple[UseDecl, ...]
    blocks: tuple[Block, ...]


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "**": 4}
_NEG = 3  # unary minus binds tighter than * and looser than **, as in Python


def unparse(e: Expr, parent: int = 0) -> str:
    """Canonical text of an expression: names derived dims (`C//r`) and quotes code in messages.

    Parentheses appear only where needed, so the text parses back to the same tree.
    """
    match e:
        case Var(name=n):
            return n
        case IntLit(value=v) | FloatLit(value=v):
            return repr(v)
        case StrLit(value=v):
            return f'"{v}"'
        case BoolLit(value=v):
            return "true" if v else "false"
        case Empty():
            return "()"
        case Neg(operand=o):
            text = "-" + unparse(o, _NEG)
            return f"({text})" if _NEG < parent else text
        case BinOp(op=op, left=a, right=b):
            p = _PRECEDENCE[op]
            # `**` groups to the right, the others to the left
            left, right = (p + 1, p) if op == "**" else (p, p + 1)
            text = f"{unparse(a, left)}{op}{unparse(b, right)}"
            return f"({text})" if p < parent else text
        case NameSeq(names=ns):
            return " ".join(n.text for n in ns)
        case DimMap(src=s, dst=d):
            return f"{unparse(s)} -> {unparse(d)}"
        case Call(func=f, args=args, kwargs=kws):
            parts = [unparse(a) for a in args] + [f"{k.name.text}={unparse(k.value)}" for k in kws]
            return f"{f.name}({', '.join(parts)})"
        case Rename(value=v, dims=t):
            text = f"{unparse(v)} as [{', '.join(d.text for d in t.dims)}]"
            return f"({text})" if parent > 0 else text
    raise TypeError(f"not an expression: {e!r}")
