"""Tensor types over named dims and the broadcast-by-name rule, alone and through the elaborator."""

from __future__ import annotations

import pytest

import attncc
from attncc.diagnostics import ShapeError
from attncc.dims import TensorType, broadcast


def tt(dims: str, bcast: str = "") -> TensorType:
    return TensorType(tuple(dims.split()), frozenset(bcast.split()))


# ---- broadcast(a, b) ----
@pytest.mark.parametrize(
    "a, b, out",
    [
        # one operand's dims are a subset of the other's: the result has the larger one's order
        ("N C H W", "N C", "N C H W"),
        ("N C", "N C H W", "N C H W"),
        ("N C H W", "N H W", "N C H W"),
        ("N H W", "N C H W", "N C H W"),
        ("N C H W", "C", "N C H W"),
        ("N C H W", "W C", "N C H W"),  # a subset in another order still fits
        ("N C", "", "N C"),  # a scalar (no dims) broadcasts against anything
        ("", "N C", "N C"),
        ("", "", ""),
        # equal sets in a different order: the left operand's order wins
        ("N C", "C N", "N C"),
        ("C N", "N C", "C N"),
        ("N C H W", "W H C N", "N C H W"),
        ("N C H W", "N C H W", "N C H W"),
    ],
    ids=lambda v: f"[{v.replace(' ', ',')}]",
)
def test_broadcast_subsets_and_permutations(a, b, out):
    result = broadcast(tt(a), tt(b))
    assert result is not None
    assert result.dims == tuple(out.split())
    assert result.bcast == frozenset()


@pytest.mark.parametrize(
    "a, b",
    [
        ("N C", "N H"),  # overlapping, but neither contains the other
        ("N C H", "N W"),
        ("C", "H"),  # disjoint
        ("N C", "H W"),
        ("N C H W", "N C T"),
    ],
    ids=lambda v: f"[{v.replace(' ', ',')}]",
)
def test_broadcast_refuses_when_neither_contains_the_other(a, b):
    assert broadcast(tt(a), tt(b)) is None
    assert broadcast(tt(b), tt(a)) is None


def test_broadcast_is_symmetric_in_its_dim_set():
    for a, b in [("N C H W", "N C"), ("N C", "C N"), ("N H W", "N C H W")]:
        ab, ba = broadcast(tt(a), tt(b)), broadcast(tt(b), tt(a))
        assert set(ab.dims) == set(ba.dims)


# ---- dims held at size 1 (`bcast`) ----
def test_bcast_dims_stay_bcast_when_no_operand_has_them_for_real():
    a = tt("N C H W", bcast="H W")  # an aligned [N, C] gate: H and W are size 1
    out = broadcast(a, tt("N C"))
    assert out.dims == ("N", "C", "H", "W")
    assert out.bcast == frozenset({"H", "W"})
    assert out.real == ("N", "C")


def test_bcast_dims_become_real_when_the_other_operand_has_them():
    out = broadcast(tt("N C H W", bcast="H W"), tt("N C H W"))
    assert out.bcast == frozenset()
    out = broadcast(tt("N C H W", bcast="C"), tt("N C H W", bcast="H W"))
    assert out.bcast == frozenset()  # each bcast dim is real in the other operand
    out = broadcast(tt("N C H W", bcast="H"), tt("N H", bcast="H"))
    assert out.bcast == frozenset({"H"})


# ---- TensorType helpers ----
def test_tensor_type_text_shows_bcast_dims_as_size_one():
    assert str(tt("N C H W")) == "[N, C, H, W]"
    assert str(tt("N C H W", bcast="H W")) == "[N, C, H=1, W=1]"
    assert str(tt("")) == "[]"


def test_tensor_type_queries():
    t = tt("N C H W")
    assert t.rank == 4
    assert "C" in t and "T" not in t
    assert t.index("H") == 2
    assert t.axes(("W", "C")) == (3, 1)
    assert t.without(("H", "W")) == tt("N C")
    with pytest.raises(ValueError):
        t.index("T")


@pytest.mark.parametrize(
    "old, new, at, out",
    [
        ("C", ("D",), 1, "N D H W"),  # dense C -> D keeps the position
        ("C", (), 1, "N H W"),  # C -> ()
        ("C", ("B", "D"), 1, "N B D H W"),  # C -> B D
        (None, ("S",), 1, "N S C H W"),  # () -> S inserts after the batch dim
        (None, ("S",), 9, "N C H W S"),  # a position past the end appends
    ],
    ids=["rename", "drop", "split", "insert", "append"],
)
def test_tensor_type_replace(old, new, at, out):
    assert tt("N C H W").replace(old, new, at=at) == tt(out)


# ---- through the elaborator: the message users see ----
@pytest.mark.parametrize(
    "a, b, op, verb",
    [("N C", "N H", "+", "add"), ("N C", "H W", "*", "multiply"), ("C", "H", "-", "subtract"),
     ("N C H", "N T", "/", "divide")],
    ids=["add", "mul", "sub", "div"],
)
def test_mismatch_message_names_both_types(a, b, op, verb):
    da, db = ", ".join(a.split()), ", ".join(b.split())
    src = f"block B(a: [{da}], b: [{db}]) {{\n  y = a {op} b\n  return y\n}}"
    with pytest.raises(ShapeError) as exc:
        attncc.check(src)
    (diag,) = exc.value.diagnostics
    assert diag.message == f"cannot {verb} [{da}] and [{db}]"
    assert (diag.span.line, diag.span.col, diag.span.end_col) == (2, 7, 12)
    assert diag.hints == ("broadcasting is by name: one operand's dims must all appear in the "
                          "other's",)
    assert len(diag.notes) == 2 and "`a`" in diag.notes[0] and "`b`" in diag.notes[1]


def test_gate_broadcasts_by_name_not_by_position():
    src = """block B(x: [N, C, H, W], s: [C, N], t: [W, H]) {
      y = x * s
      z = y + t
      return z
    }"""
    ir = attncc.check(src)
    (_, out) = ir.outputs[0]
    assert ir.node(out).out.dims == ("N", "C", "H", "W")
