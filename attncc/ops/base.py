"""The Op base class, argument kinds of op signatures, parameter specs, costs and the registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from attncc.diagnostics import NameError_, Span, did_you_mean

if TYPE_CHECKING:
    from attncc.dims import TensorType


# ---- argument kinds: what an op's attribute is, as data; elaborate.py converts the syntax ----
@dataclass(frozen=True)
class Arg:
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class DimsArg(Arg):
    """Dim names side by side (`over=H W`): a tuple of names present in the input."""


@dataclass(frozen=True)
class DimArg(Arg):
    """One dim name; `new=True` for a dim the op creates (`as=S`)."""

    new: bool = False


@dataclass(frozen=True)
class MapArg(Arg):
    """`In -> Out`: a tuple of source dims (maybe empty) and of destination dims (maybe empty).

    `new_dst=True`: the destination names dims the op creates (`merge(x, H W -> P)`), taken
    as plain names rather than looked up or evaluated as sizes.
    """

    new_dst: bool = False


@dataclass(frozen=True)
class IntArg(Arg):
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class FloatArg(Arg):
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False


@dataclass(frozen=True)
class BoolArg(Arg):
    pass


@dataclass(frozen=True)
class ChoiceArg(Arg):
    """One word of `choices`, written as a string literal (`mode="bilinear"`)."""

    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signature:
    """Tensor inputs first, then attributes; `positional` lists what may be passed by position."""

    tensors: tuple[str, ...] = ("x",)
    attrs: dict[str, Arg] = field(default_factory=dict)
    positional: tuple[str, ...] = ()  # attribute names accepted by position after the tensors
    variadic: bool = False  # the single tensor parameter takes one or more tensors
    # trailing names of `tensors` that may be left out; given by keyword only (`like=x`)
    optional: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return self.tensors + tuple(self.attrs)


@dataclass(frozen=True)
class Map:
    """A converted dim map with the sizes of its destination dims."""

    src: tuple[str, ...]
    dst: tuple[str, ...]

    def __str__(self) -> str:
        side = lambda ds: " ".join(ds) if ds else "()"  # noqa: E731
        return f"{side(self.src)}->{side(self.dst)}"


@dataclass(frozen=True)
class ParamSpec:
    """A learnable parameter or a buffer an op needs; `init` names a rule codegen knows."""

    shape: tuple[int, ...]
    # zeros | ones | constant(value) | normal(std) | uniform(low, high) | kaiming_uniform
    # | uniform_fan_in | values(v, ...) | source; the arguments of the parametrised ones are
    # `init_args`; `source` copies in `source`, a torch expression the owning op writes for a
    # value it computes at compile time (FcaNet's DCT basis, a gather's index table)
    init: str = "zeros"
    fan_in: int = 1
    buffer: bool = False
    dtype: str = "float32"
    init_args: tuple[float, ...] = ()
    source: str = ""

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Cost:
    flops: int = 0  # multiply-accumulates count as two
    bytes_moved: int = 0


@dataclass(frozen=True)
class Sample:
    """One case for the per-op differential test: input dims, attribute values, sizes."""

    inputs: tuple[tuple[str, ...] | TensorType, ...]  # a TensorType for an int64 input
    attrs: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    tol: tuple[float, float] | None = None


class OpError(Exception):
    """Raised by an op's rules; the elaborator turns it into a diagnostic at the argument `arg`."""

    def __init__(self, message: str, arg: str | None = None, hints: tuple[str, ...] = (),
                 kind: str = "shape") -> None:
        super().__init__(message)
        self.message, self.arg, self.hints, self.kind = message, arg, hints, kind


def check_over(op: str, x: TensorType, over: tuple[str, ...], verb: str = "runs over",
               hint: str = "run it over") -> None:
    """`over` names 1 to 3 distinct dims of x (the windowed, pooled or convolved dims)."""
    if not 1 <= len(over) <= 3:
        raise OpError(f"{op} {verb} 1 to 3 dims, not {len(over)}", arg="over")
    if len(set(over)) != len(over):
        raise OpError(f"{op} names a dim twice in `over={' '.join(over)}`", arg="over")
    for d in over:
        if d not in x.real:
            raise OpError(f"{op} {verb} `{d}` but its input has dims {x}", arg="over",
                          hints=(f"{hint} some of {', '.join(x.real)}",))


class InferContext:
    """What an op's shape rule may ask of the elaborator: dim sizes and new dims."""

    def require_size(self, dim: str, why: str) -> int:  # pragma: no cover - protocol
        """The concrete size of `dim`; raises a diagnostic when it is only known at run time."""
        raise NotImplementedError

    def new_dim(self, name: str, size: int | None) -> None:  # pragma: no cover - protocol
        """Declare a dim the op creates; `size` None: known only at run time."""
        raise NotImplementedError

    def known_size(self, dim: str) -> int | None:
        """The size of `dim` if the block fixes it, else None; unlike `require_size` it never
        pins a run-time dim. Every implementer builds or reads an IR as `self.ir`."""
        ir = getattr(self, "ir", None)
        return None if ir is None else ir.dims.get(dim)

    def rename_dim(self, old: str, new: str) -> None:  # pragma: no cover - protocol
        """Declare `new` as a dim of the same size as `old`."""
        raise NotImplementedError


class Op:
    """One operation of the language, defined once: every facet lives on the class.

    Facets: `signature`, `traits`, `infer` (shape rule), `params` (parameters and init),
    `resolve` (dim names -> positional attributes, once per node), `numpy`, `torch`, `onnx`
    and `cost`. Lowerings receive tensors positionally, then parameters by name, then the
    resolved attributes; they never reason about dim names.
    """

    name: ClassVar[str]
    signature: ClassVar[Signature] = Signature()
    traits: ClassVar[frozenset[str]] = frozenset()
    # tensor inputs that may be int64 indices (`take`'s index); any other gets float32 only
    int_inputs: ClassVar[tuple[str, ...]] = ()

    def infer(self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        raise NotImplementedError

    def params(
        self, ctx: InferContext, ins: list[TensorType], attrs: dict[str, Any]
    ) -> dict[str, ParamSpec]:
        return {}

    def resolve(
        self, ins: list[TensorType], out: TensorType, attrs: dict[str, Any]
    ) -> dict[str, Any]:
        return {}

    def aligned_inputs(self, ins: list[TensorType], out: TensorType) -> list[TensorType | None]:
        """The layout each tensor input must have before lowering (None: as it is).

        The canonicalize pass inserts `align` nodes to meet it.
        """
        return [None] * len(ins)

    def numpy(self, *args: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def torch(self, e: Any, *args: Any, **kw: Any) -> str:
        raise NotImplementedError

    def torch_inplace(self, e: Any, *args: Any, **kw: Any) -> str | None:
        """The same value written over the first tensor argument (`torch.relu_(x)`,
        `a.mul_(b)`), or None where the op has no in-place form. The code generator uses it
        only in inference (no autograd), on a temporary no one reads afterwards
        (attncc/backends/inplace.py decides where)."""
        return None

    def onnx(self, e: Any, *args: Any, **kw: Any) -> str:
        raise NotImplementedError

    def cost(
        self,
        in_shapes: list[tuple[int, ...]],
        out_shape: tuple[int, ...],
        attrs: dict[str, Any],
        param_shapes: dict[str, tuple[int, ...]],
    ) -> Cost:
        """FLOPs and bytes moved at concrete sizes; `IR.cost(node)` supplies the shapes.

        Tensor shapes are positional (inputs, then the output); parameter shapes come by name.
        """
        raise NotImplementedError

    def samples(self) -> list[Sample]:
        return []

    def __repr__(self) -> str:
        return f"<op {self.name}>"


class DuplicateOpError(Exception):
    """Two op classes claimed the same DSL name: a bug in attncc, caught at import."""


_REGISTRY: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add one op to the registry under its DSL name."""
    if cls.name in _REGISTRY:
        raise DuplicateOpError(f"op `{cls.name}` is defined twice")
    _REGISTRY[cls.name] = cls()
    return cls


def get_op(name: str, span: Span | None = None) -> Op:
    op = _REGISTRY.get(name)
    if op is None:
        raise NameError_(f"unknown op `{name}`", span, hints=did_you_mean(name, user_ops(), "op"))
    return op


def has_op(name: str) -> bool:
    return name in _REGISTRY


def all_ops() -> dict[str, Op]:
    return dict(_REGISTRY)


def user_ops() -> list[str]:
    """Op names a spec may call (internal ops such as `align` are inserted by passes only)."""
    return [n for n, op in _REGISTRY.items() if "internal" not in op.traits]


# the shared conversions lowerings use, kept here so each op file stays small
def perm_or_none(perm: tuple[int, ...]) -> tuple[int, ...] | None:
    return None if perm == tuple(range(len(perm))) else perm


Lowering = Callable[..., str]
