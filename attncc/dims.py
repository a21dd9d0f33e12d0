"""Tensor types over named dims, and the broadcast-by-name rule with its error text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorType:
    """An ordered tuple of dim names. Sizes live in the IR's dim table, one per name."""

    dims: tuple[str, ...]
    # dims held at size 1 for broadcasting (only `align` produces them)
    bcast: frozenset[str] = frozenset()
    # element type: float32 everywhere, except the int64 indices of selection ops (argmax),
    # which only ops listing the tensor in `Op.int_inputs` accept (the elaborator checks)
    dtype: str = "float32"

    def __str__(self) -> str:
        dims = "[" + ", ".join(f"{d}=1" if d in self.bcast else d for d in self.dims) + "]"
        return dims if self.dtype == "float32" else f"{dims} {self.dtype}"

    @property
    def real(self) -> tuple[str, ...]:
        return tuple(d for d in self.dims if d not in self.bcast)

    @property
    def rank(self) -> int:
        return len(self.dims)

    def __contains__(self, dim: str) -> bool:
        return dim in self.dims

    def index(self, dim: str) -> int:
        return self.dims.index(dim)

    def axes(self, dims: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self.dims.index(d) for d in dims)

    def without(self, dims: tuple[str, ...]) -> TensorType:
        return TensorType(tuple(d for d in self.dims if d not in dims))

    def replace(self, old: str | None, new: tuple[str, ...], at: int = 1) -> TensorType:
        """Replace dim `old` by `new` in place; with no `old`, insert `new` at position `at`."""
        if old is None:
            pos = min(at, len(self.dims))
            return TensorType(self.dims[:pos] + new + self.dims[pos:])
        i = self.dims.index(old)
        return TensorType(self.dims[:i] + new + self.dims[i + 1 :])


def broadcast(a: TensorType, b: TensorType) -> TensorType | None:
    """Broadcast by name: one operand's dims must all appear in the other.

    The result keeps the order of the operand with more dims (the left one on a tie), so
    `x * s` with x: [N, C, H, W] and s: [N, C] is [N, C, H, W]. Returns None when neither
    operand's dims contain the other's, which is the "cannot add [N, C] and [N, H]" error.
    """
    sa, sb = set(a.dims), set(b.dims)
    if sb <= sa:
        dims = a.dims
    elif sa <= sb:
        dims = b.dims
    else:
        return None
    real = set(a.real) | set(b.real)
    return TensorType(dims, frozenset(d for d in dims if d not in real))
