"""slice and pad (attncc/ops/slicing.py), topk / topk_index (topk.py) and covariance
(covariance.py): semantics against plain Python / NumPy / torch written here, run-time sizes
through the three backends, gradients, GSoP's hand-written covariance, and the diagnostics."""

from __future__ import annotations

import re

import _harness as h
import numpy as np
import pytest
import torch

import attncc
from attncc.backends.torch_module import build_module
from attncc.diagnostics import AttnccError, InternalError
from attncc.ir import single_op
from attncc.ops import get_op
from attncc.ops.base import OpError
from attncc.ops.slicing import Slice
from attncc.passes import run_pipeline


def _module(op: str, inputs, attrs, sizes):
    ir = single_op(get_op(op), inputs, attrs, sizes)
    run_pipeline(ir)
    return build_module(ir)


def _agree(text: str, sizes: dict[str, int], seed: int = 0, **hyper) -> dict:
    """Compile spec text, run it at `sizes` in all three backends; returns their outputs."""
    m = attncc.compile(text, seed=0, **hyper)
    return h.assert_backends_agree(m, h.make_inputs(m.ir, sizes, seed), label=text[:40])


# ---- slice: Python's rule for bounds, at compile time and at run time ----
BOUNDS = [(0, None, 1), (2, None, 1), (-3, None, 1), (0, -1, 1), (1, -1, 2), (-5, 4, 1),
          (-100, 100, 3), (3, 100, 2), (-2, None, 5), (0, 1, 1), (4, 9, 4), (6, None, 1)]


@pytest.mark.parametrize(("start", "end", "step"), BOUNDS)
@pytest.mark.parametrize("n", [5, 9])
def test_slice_matches_python_at_a_fixed_size(n, start, end, step):
    want = list(range(n))[start:end:step]
    attrs = {"along": "T", "start": start, "end": end, "step": step, "as": "U"}
    if not want:
        with pytest.raises(OpError, match="keeps nothing"):
            single_op(get_op("slice"), [("N", "T")], attrs, {"N": 2, "T": n})
        return
    ir = single_op(get_op("slice"), [("N", "T")], attrs, {"N": 2, "T": n})
    assert ir.dims["U"] == len(want) == Slice.length(n, start, end, step)
    run_pipeline(ir)
    m = build_module(ir)
    x = np.tile(np.arange(n, dtype=np.float32), (2, 1))
    for backend in ("numpy", "torch", "ort"):
        np.testing.assert_array_equal(h.BACKENDS[backend](m, {"x": x})["y"], [want, want])


def test_slice_of_a_run_time_dim_counts_from_its_size():
    # T is free: the negative bounds resolve against each run's size, in ONNX too
    text = """block B(x: [N, C, T]) {
  a = slice(x, along=T, start=-3, as=Ta)
  b = slice(x, along=T, start=1, end=-1, step=2, as=Tb)
  return a, b
}"""
    m = attncc.compile(text, C=4)
    assert m.ir.dims["Ta"] is None and m.ir.dims["Tb"] is None
    for t in (6, 11):
        out = _agree(text, {"N": 2, "T": t}, C=4)["numpy"]
        assert out["a"].shape == (2, 4, 3)
        assert out["b"].shape == (2, 4, len(range(t)[1:-1:2]))


def test_slice_docstring_example_neighbours_in_time():
    # slice's docstring: two run-time slices share the new dim Tm and combine by name
    text = """block B(x: [N, C, T]) {
  prev = slice(x, along=T, end=-1, as=Tm)
  next = slice(x, along=T, start=1, as=Tm)
  y = next - prev
  return y
}"""
    for t in (4, 9):
        out = _agree(text, {"N": 2, "T": t}, C=3)
        x = h.make_inputs(attncc.compile(text, C=3).ir, {"N": 2, "T": t}, 0)["x"]
        np.testing.assert_allclose(out["torch"]["y"], x[..., 1:] - x[..., :-1], rtol=1e-6)


def test_slice_and_pad_keep_the_onnx_dims_dynamic():
    text = """block B(x: [N, C, T]) {
  y = pad(slice(x, along=T, end=-2, as=Tc), over=Tc, width=1, mode="reflect", as=Tp)
  return y
}"""
    model = h.onnx_model(attncc.compile(text, C=4))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 4, "T"]
    for t in (5, 8):
        assert _agree(text, {"N": 3, "T": t}, C=4)["ort"]["y"].shape == (3, 4, t)


# ---- pad: every mode against np.pad / torch F.pad written out here ----
@pytest.mark.parametrize(("mode", "before", "after", "want"), [
    ("constant", 2, 1, [9, 9, 0, 1, 2, 3, 9]),
    ("reflect", 2, 3, [2, 1, 0, 1, 2, 3, 2, 1, 0]),
    ("replicate", 3, 2, [0, 0, 0, 0, 1, 2, 3, 3, 3]),
    ("circular", 4, 1, [0, 1, 2, 3, 0, 1, 2, 3, 0]),
])
@pytest.mark.parametrize("backend", ["numpy", "torch", "ort"])
def test_pad_modes_on_a_ramp(backend, mode, before, after, want):
    value = 9.0 if mode == "constant" else 0.0
    m = _module("pad", [("N", "T")], {"over": ("T",), "before": before, "after": after,
                                      "mode": mode, "value": value, "as": ("Tp",)},
                {"N": 2, "T": 4})
    x = np.tile(np.arange(4, dtype=np.float32), (2, 1))
    np.testing.assert_array_equal(h.BACKENDS[backend](m, {"x": x})["y"], [want, want])


def test_pad_width_before_after():
    ir = single_op(get_op("pad"), [("N", "H", "W")],
                   {"over": ("H", "W"), "width": 2, "after": 0, "as": ("Hp", "Wp")},
                   {"N": 2, "H": 5, "W": 7})
    assert (ir.dims["Hp"], ir.dims["Wp"]) == (7, 9)
    assert str(ir.node(ir.outputs[0][1]).out) == "[N, Hp, Wp]"


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_torch_over_three_dims(mode):
    # [N, T, C, H, W] padded over T H W with different widths in front and behind
    m = _module("pad", [("N", "T", "C", "H", "W")],
                {"over": ("T", "H", "W"), "before": 2, "after": 1, "mode": mode,
                 "as": ("Tp", "Hp", "Wp")}, {"N": 2, "T": 3, "C": 4, "H": 5, "W": 6})
    x = torch.randn(2, 3, 4, 5, 6)
    want = torch.nn.functional.pad(x.permute(0, 2, 1, 3, 4), (2, 1) * 3, mode=mode)
    torch.testing.assert_close(m(x), want.permute(0, 2, 1, 3, 4), rtol=0, atol=0)


def test_circular_pad_in_onnx_is_slice_and_concat():
    m = _module("pad", [("N", "T")], {"over": ("T",), "width": 2, "mode": "circular",
                                      "as": ("Tp",)}, {"N": 2, "T": 4})
    ops = {n.op_type for n in h.onnx_model(m).graph.node}
    assert "Pad" not in ops and {"Slice", "Concat"} <= ops


def test_pad_beyond_the_run_time_size_fails_in_numpy_too():
    m = attncc.compile("""block B(x: [N, T]) {
  y = pad(x, over=T, width=3, mode="reflect", as=Tp)
  return y
}""")
    x = np.zeros((2, 3), np.float32)  # reflect needs widths < 3
    with pytest.raises(InternalError, match="too large for a dim of size 3"):
        h.run_numpy(m, {"x": x})
    with pytest.raises(RuntimeError):
        m(torch.from_numpy(x))


# ---- topk / topk_index ----
@pytest.mark.parametrize("largest", [True, False])
def test_topk_values_and_indices(largest):
    attrs = {"over": "T", "k": 3, "as": "K", "largest": largest}
    sizes = {"N": 2, "T": 7, "C": 4}
    values = _module("topk", [("N", "T", "C")], attrs, sizes)
    index = _module("topk_index", [("N", "T", "C")], attrs, sizes)
    x = np.random.default_rng(0).standard_normal((2, 7, 4)).astype(np.float32)
    order = np.sort(x, axis=1)
    want = order[:, ::-1][:, :3] if largest else order[:, :3]
    for backend in ("numpy", "torch", "ort"):
        v = h.BACKENDS[backend](values, {"x": x})["y"]
        i = h.BACKENDS[backend](index, {"x": x})["y"]
        assert i.dtype == np.int64
        np.testing.assert_array_equal(v, want)
        np.testing.assert_array_equal(np.take_along_axis(x, i, axis=1), want)


@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_topk_index_ties_take_the_lower_index_first(backend):
    # torch.topk leaves the order of ties unspecified; NumPy and ONNX promise this one
    m = _module("topk_index", [("N", "T")], {"over": "T", "k": 3, "as": "K"}, {"N": 2, "T": 5})
    x = np.array([[1, 5, 5, 0, 5], [2, 2, 2, 2, 2]], np.float32)
    y = h.BACKENDS[backend](m, {"x": x})["y"]
    np.testing.assert_array_equal(y, [[1, 2, 4], [0, 1, 2]])


def test_topk_index_is_int64_and_refused_by_arithmetic():
    text = "block B(x: [N, T]) { i = topk_index(x, over=T, k=2, as=K)\n y = i * 2.0\n return y }"
    with pytest.raises(AttnccError, match=r"takes float tensors, but `a` is \[N, K\] int64"):
        attncc.compile(text, T=5)


def test_topk_gradient_reaches_the_selected_entries():
    m = _module("topk", [("N", "T")], {"over": "T", "k": 2, "as": "K"}, {"N": 2, "T": 5})
    x = torch.tensor([[0.0, 3.0, 1.0, 4.0, 2.0], [5.0, -1.0, 0.5, 0.0, 6.0]],
                     requires_grad=True)
    m(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 1, 0, 1, 0], [1, 0, 0, 0, 1]]))


# ---- covariance ----
@pytest.mark.parametrize("unbiased", [False, True])
def test_covariance_matches_torch_cov_per_sample(unbiased):
    m = _module("covariance", [("N", "H", "C", "W")],
                {"over": ("H", "W"), "features": "C", "as": "C2", "unbiased": unbiased},
                {"N": 3, "H": 4, "C": 5, "W": 6})
    x = torch.randn(3, 4, 5, 6)
    y = m(x)
    assert y.shape == (3, 5, 5)
    for n in range(3):
        feats = x[n].permute(1, 0, 2).reshape(5, 24)  # [C, H·W]
        torch.testing.assert_close(y[n], torch.cov(feats, correction=int(unbiased)),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("d", "hw"), [(6, (5, 7)), (9, (4, 3))])
def test_covariance_equals_the_hand_written_form(d, hw):
    # GSoP's covariance as it was written out before the op existed: centre over the
    # positions, contract with itself, divide by the count M = H·W
    text = """block B(z: [N, Dr, H, W]) {
  zc = z - mean(z, over=H W)
  m = sum(0 * mean(z, over=Dr) + 1, over=H W)
  cov = contract(zc, zc as [N, Dc, H, W], over=H W) / m
  c = covariance(z, over=H W, features=Dr, as=Dc)
  return cov, c
}"""
    hh, ww = hw
    out = _agree(text, {"N": 2, "H": hh, "W": ww}, Dr=d)
    for backend in ("numpy", "torch", "ort"):
        np.testing.assert_allclose(out[backend]["c"], out[backend]["cov"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("op", "attrs", "sizes"), [
    pytest.param("slice", {"along": "T", "start": -4, "end": -1, "step": 2, "as": "U"},
                 {"N": 2, "T": 7}, id="slice"),
    pytest.param("pad", {"over": ("T",), "before": 2, "after": 3, "mode": "reflect",
                         "as": ("Tp",)}, {"N": 2, "T": 7}, id="pad-reflect"),
    pytest.param("pad", {"over": ("T",), "width": 3, "mode": "circular", "as": ("Tp",)},
                 {"N": 2, "T": 7}, id="pad-circular"),
    pytest.param("pad", {"over": ("T",), "width": 9, "mode": "replicate", "as": ("Tp",)},
                 {"N": 2, "T": 7}, id="pad-replicate"),
    pytest.param("topk", {"over": "T", "k": 3, "as": "K", "largest": False},
                 {"N": 2, "T": 7}, id="topk"),
    pytest.param("covariance", {"over": ("N",), "features": "T", "as": "U", "unbiased": True},
                 {"N": 5, "T": 3}, id="covariance"),
])
def test_gradients_in_float64(op, attrs, sizes):
    m = _module(op, [("N", "T")], attrs, sizes).double()
    x = torch.randn(sizes["N"], sizes["T"], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))


# ---- diagnostics ----
DIAGNOSTICS = [
    # slice
    pytest.param("slice", {"along": "L", "as": "U"}, "slice cuts `L` but its input has dims",
                 "along", id="slice-along-missing"),
    pytest.param("slice", {"along": "T", "start": 1, "as": "T"}, "needs a new name", "as",
                 id="slice-keeps-name"),
    pytest.param("slice", {"along": "T", "start": 1, "as": "C"}, "two dims named `C`", "as",
                 id="slice-name-taken"),
    pytest.param("slice", {"along": "T", "start": 3, "end": 2, "as": "U"},
                 "empty at every size", "end", id="slice-always-empty"),
    pytest.param("slice", {"along": "T", "start": -1, "end": -2, "as": "U"},
                 "empty at every size", "end", id="slice-always-empty-negative"),
    pytest.param("slice", {"along": "C", "start": 6, "as": "U"}, "keeps nothing", "start",
                 id="slice-beyond-fixed-size"),
    # pad
    pytest.param("pad", {"over": ("L",), "width": 1, "as": ("Lp",)},
                 "pad widens `L` but its input has dims", "over", id="pad-over-missing"),
    pytest.param("pad", {"over": ("C", "T"), "width": 1, "as": ("Cp",)},
                 "`as` names 1 dims for the 2 padded dims", "as", id="pad-as-count"),
    pytest.param("pad", {"over": ("T",), "as": ("Tp",)}, "pad adds nothing", "width",
                 id="pad-no-width"),
    pytest.param("pad", {"over": ("T",), "width": 1, "as": ("T",)}, "needs a new name", "as",
                 id="pad-keeps-name"),
    pytest.param("pad", {"over": ("C",), "width": 6, "mode": "reflect", "as": ("Cp",)},
                 "needs widths less than the size of `C` (6)", "mode", id="pad-reflect-wide"),
    pytest.param("pad", {"over": ("C",), "before": 7, "mode": "circular", "as": ("Cp",)},
                 "needs widths at most the size of `C` (6)", "mode", id="pad-circular-wide"),
    pytest.param("pad", {"over": ("C",), "width": 1, "mode": "reflect", "value": 1.0,
                         "as": ("Cp",)}, "`value` fills mode \"constant\" only", "value",
                 id="pad-value-without-constant"),
    pytest.param("pad", {"over": ("N", "C", "T", "N"), "width": 1, "as": ("A", "B", "D", "E")},
                 "pad widens 1 to 3 dims, not 4", "over", id="pad-too-many-dims"),
    # topk
    pytest.param("topk", {"over": "L", "k": 2, "as": "K"}, "topk selects along `L`", "over",
                 id="topk-over-missing"),
    pytest.param("topk", {"over": "C", "k": 7, "as": "K"}, "k=7 entries of `C`, which has only 6",
                 "k", id="topk-k-too-large"),
    pytest.param("topk_index", {"over": "C", "k": 2, "as": "T"},
                 "topk_index's new dim `T` is already a dim", "as", id="topk-as-taken"),
    # covariance
    pytest.param("covariance", {"over": ("H",), "features": "C", "as": "D"},
                 "covariance averages over `H`", "over", id="cov-over-missing"),
    pytest.param("covariance", {"over": ("T",), "features": "L", "as": "D"},
                 "features `L` is not a dim", "features", id="cov-features-missing"),
    pytest.param("covariance", {"over": ("T", "C"), "features": "C", "as": "D"},
                 "both the features and a sample dim", "features", id="cov-features-in-over"),
    pytest.param("covariance", {"over": ("T",), "features": "C", "as": "N"},
                 "new dim `N` is already a dim", "as", id="cov-as-taken"),
    pytest.param("covariance", {"over": (), "features": "C", "as": "D"},
                 "at least one sample dim", "over", id="cov-no-samples"),
]


@pytest.mark.parametrize(("op", "attrs", "message", "arg"), DIAGNOSTICS)
def test_bad_arguments_are_diagnosed(op, attrs, message, arg):
    with pytest.raises(OpError) as err:
        single_op(get_op(op), [("N", "C", "T")], attrs, {"N": 2, "C": 6, "T": 3})
    assert message in err.value.message
    assert err.value.arg == arg


def test_unbiased_covariance_of_one_sample_is_an_error():
    with pytest.raises(OpError, match="M - 1 = 0") as err:
        single_op(get_op("covariance"), [("N", "C", "T")],
                  {"over": ("T",), "features": "C", "as": "D", "unbiased": True},
                  {"N": 2, "C": 6, "T": 1})
    assert err.value.arg == "unbiased"


@pytest.mark.parametrize(("call", "message", "at"), [
    pytest.param('pad(x, over=T, width=1, mode="wrap", as=Tp)', 'one of "constant"', '"wrap"',
                 id="pad-unknown-mode"),
    pytest.param("slice(x, along=T, step=0, as=U)", "must be at least 1", "0,",
                 id="slice-step-0"),
    pytest.param("topk(x, over=C, k=9, as=K)", "which has only 6", "k=9", id="topk-k-too-large"),
    pytest.param("pad(x, over=T, before=-1, as=Tp)", "must be at least 0", "-1",
                 id="pad-negative-width"),
    pytest.param("covariance(x, over=T, features=C, as=N)", "already a dim", "as=N",
                 id="covariance-as-taken"),
])
def test_diagnostics_in_a_spec_point_at_the_argument(call, message, at):
    text = f"block B(x: [N, C, T]) {{\n  y = {call}\n  return y\n}}"
    with pytest.raises(AttnccError, match=re.escape(message)) as err:
        attncc.compile(text, C=6)
    span = err.value.diagnostics[0].span
    assert (span.line, span.col) == (2, len("  y = ") + 1 + call.index(at))
