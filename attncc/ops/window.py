"""Sliding windows over named dims: output sizes, and names for the dims a window resizes.

Shared by convolution and the windowed poolings. A window that keeps a dim's size (stride 1,
"same" padding) keeps its name; one that changes it needs a new name (`to=Hs Ws`), since a
dim name stands for one size everywhere in a block.
"""

from __future__ import annotations

from dataclasses import dataclass

from attncc.dims import TensorType
from attncc.ops.base import InferContext, OpError


@dataclass(frozen=True)
class Window:
    k: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    def __str__(self) -> str:
        extra = f", dilation={self.dilation}" if self.dilation != 1 else ""
        return f"k={self.k}, stride={self.stride}, padding={self.padding}{extra}"

    @property
    def keeps(self) -> bool:
        return self.stride == 1 and 2 * self.padding == self.dilation * (self.k - 1)

    def out_size(self, n: int) -> int:
        return (n + 2 * self.padding - self.dilation * (self.k - 1) - 1) // self.stride + 1


def window_dims(op: str, x: TensorType, over: tuple[str, ...], to: tuple[str, ...] | None,
                w: Window, culprit: str = "to") -> tuple[str, ...]:
    """Check `over` against x and return the output names of the windowed dims.

    `culprit` is the argument a diagnostic points at when a resizing window has no `to`.
    """
    if not 1 <= len(over) <= 3:
        raise OpError(f"{op} runs over 1 to 3 dims, not {len(over)}", arg="over")
    if len(set(over)) != len(over):
        raise OpError(f"{op} names a dim twice in `over={' '.join(over)}`", arg="over")
    for d in over:
        if d not in x:
            raise OpError(f"{op} runs over `{d}` but its input has dims {x}", arg="over",
                          hints=(f"run it over some of {', '.join(x.dims)}",))
    if to is None:
        if not w.keeps:
            names = " ".join(f"{d}s" for d in over)
            raise OpError(
                f"{op} with {w} changes the size of `{' '.join(over)}`, so its output dims "
                f"need new names", arg=culprit,
                hints=(f"name them: `to={names}`, or keep the size (stride 1, padding "
                       f"{w.dilation * (w.k - 1) // 2} with an odd k)",))
        return over
    if len(to) != len(over):
        raise OpError(f"`to` names {len(to)} dims for the {len(over)} dims "
                      f"`{' '.join(over)}`", arg="to")
    if len(set(to)) != len(to):
        raise OpError(f"`to` names a dim twice: `{' '.join(to)}`", arg="to")
    for src, dst in zip(over, to, strict=True):
        if dst == src and not w.keeps:
            raise OpError(f"`{dst}` changes size ({w}), so it cannot keep its name", arg="to",
                          hints=("give the resized dim a new name",))
        if dst != src and dst in x:
            raise OpError(f"{op} would give two dims named `{dst}`", arg="to")
    return tuple(to)


def register_window_dims(ctx: InferContext, op: str, over: tuple[str, ...],
                         to: tuple[str, ...], w: Window) -> None:
    """Size the renamed dims: known when the input's size is, else at run time."""
    for src, dst in zip(over, to, strict=True):
        if dst == src:
            continue
        n = ctx.known_size(src)
        size = None if n is None else w.out_size(n)
        if size is not None and size < 1:
            raise OpError(f"the {op} window ({w}) is larger than `{src}` ({n})", arg="k",
                          kind="hyper")
        if size is None and ctx.known_size(dst) is not None:
            continue  # declared by the spec; only the run time can check it
        try:
            ctx.new_dim(dst, size)
        except OpError as err:
            raise OpError(err.message, arg="to", hints=err.hints) from None


def rename(x: TensorType, over: tuple[str, ...], to: tuple[str, ...]) -> TensorType:
    mapping = dict(zip(over, to, strict=True))
    return TensorType(tuple(mapping.get(d, d) for d in x.dims))
