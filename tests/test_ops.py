"""Per op x sample: a one-op IR through NumPy, PyTorch and onnxruntime; costs and parameter counts.

Each case builds the IR directly with `attncc.ir.single_op` (no spec text), runs the pass
pipeline so canonicalize inserts the aligns a lowering needs, compiles the torch module,
randomises its weights, and feeds that one state_dict to all three backends (tests/_harness.py).
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from attncc.backends.torch_module import build_module
from attncc.diagnostics import AttnccError, InternalError
from attncc.elaborate import elaborate
from attncc.ir import IR, single_op
from attncc.ops import Op, all_ops, get_op
from attncc.ops.base import Map, OpError, Sample
from attncc.passes import run_pipeline

# distinct sizes, so an axis mix-up changes a shape or a value; samples add their own dims
SIZES = {"N": 2, "C": 6, "H": 5, "W": 7, "T": 3}

# backend bugs outside attncc/ops, by case id: (reason, the exception they raise). The marks are
# strict, so a fix shows up as an XPASS and its entry must go.
KNOWN_BACKEND_BUGS: dict[str, tuple[str, type[BaseException]]] = {}


def _cases(ops=None, *, known_bugs: bool = False):
    """pytest params (op, sample) with ids `name-i`; `known_bugs` marks the backend bugs."""
    cases = []
    for name, op in sorted(all_ops().items()):
        if ops is not None and name not in ops:
            continue
        for i, s in enumerate(op.samples()):
            cid = f"{op.name}-{i}"
            marks = ()
            if known_bugs and cid in KNOWN_BACKEND_BUGS:
                reason, raises = KNOWN_BACKEND_BUGS[cid]
                marks = pytest.mark.xfail(reason=reason, raises=raises, strict=True)
            cases.append(pytest.param(op, s, id=cid, marks=marks))
    return cases


def build(op: Op, sample: Sample) -> IR:
    """The sample's one-op IR, through the pass pipeline."""
    ir = single_op(op, sample.inputs, sample.attrs, {**SIZES, **sample.sizes})
    run_pipeline(ir)
    return ir


def compiled(op: Op, sample: Sample, seed: int = 0):
    module = build_module(build(op, sample))
    return h.randomize_(module, seed)


@pytest.mark.parametrize(("op", "sample"), _cases(known_bugs=True))
def test_backends_agree(op: Op, sample: Sample, request):
    module = compiled(op, sample)
    inputs = h.make_inputs(module.ir, {}, seed=1)
    rtol, atol = sample.tol or (h.RTOL, h.ATOL)
    results = h.assert_backends_agree(module, inputs, label=request.node.callspec.id,
                                      rtol=rtol, atol=atol)
    y = results["numpy"]["y"]
    out = module.ir.node(module.ir.outputs[0][1]).out
    assert y.dtype == np.dtype(out.dtype)  # float32, or int64 for indices (argmax)
    assert y.shape == module.ir.shape(out)


@pytest.mark.parametrize(("op", "sample"), _cases())
def test_sample_dims_have_distinct_sizes(op: Op, sample: Sample):
    # two dims of one size let a transposed lowering pass; new dims (stack's `as`) count too
    ir = build(op, sample)
    dims = {d for n in ir.graph.nodes if ir.node(n).op != "param" for d in ir.node(n).out.real}
    if op.name == "rename":  # renamed dims share their sizes by definition
        dims = {d for n in ir.inputs for d in ir.node(n).out.dims}
    if op.name == "covariance":  # a feature-by-feature matrix: `as` has the features' size
        dims.discard(sample.attrs["as"])
    sizes = {d: ir.dims[d] for d in dims}
    assert len(set(sizes.values())) == len(sizes), sizes


@pytest.mark.parametrize(("op", "sample"), _cases())
def test_single_op_ir_is_canonical(op: Op, sample: Sample):
    ir = build(op, sample)
    ir.lint()
    # the pipeline reached a fixed point: running it again changes nothing
    assert run_pipeline(ir) == []


@pytest.mark.parametrize(("op", "sample"),
                         [c for c in _cases() if "has_params" in c.values[0].traits])
def test_param_count_matches_torch_module(op: Op, sample: Sample):
    ir = build(op, sample)
    specs = [ir.node(n).param for n in ir.params()]
    module = build_module(ir)
    assert sum(s.numel for s in specs if not s.buffer) == sum(
        p.numel() for p in module.parameters())
    assert sum(s.numel for s in specs if s.buffer) == sum(b.numel() for b in module.buffers())
    shapes = {ir.node(n).name: ir.node(n).param.shape for n in ir.params()}
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == shapes


@pytest.mark.parametrize(("op", "sample"), _cases())
def test_cost_is_well_formed(op: Op, sample: Sample):
    ir = build(op, sample)
    for n in ir.topo():
        if ir.node(n).op in ("input", "param"):
            continue
        cost = ir.cost(n)
        assert isinstance(cost.flops, int) and cost.flops >= 0, cost
        assert isinstance(cost.bytes_moved, int) and cost.bytes_moved >= 0, cost


# (op, input dims, attrs, extra sizes, multiply-accumulates worked out by hand)
MAC_CASES = [
    pytest.param("dense", ("N", "C"), {"map": Map(("C",), ("D",))}, {"D": 3},
                 2 * 3 * 6, id="dense-last-axis"),
    pytest.param("dense", ("N", "C", "H"), {"map": Map(("C",), ("D",)), "bias": False},
                 {"D": 4}, 2 * 4 * 5 * 6, id="dense-middle-axis"),
    pytest.param("dense", ("C", "N", "T"), {"map": Map(("C",), ("D",))}, {"D": 11},
                 11 * 2 * 3 * 6, id="dense-first-axis"),
    pytest.param("conv", ("N", "C"), {"over": ("C",), "k": 3}, {},
                 2 * 6 * 3, id="conv1d-no-channels"),
    pytest.param("conv", ("N", "S", "H", "W"),
                 {"map": Map(("S",), ()), "over": ("H", "W"), "k": 7}, {"S": 3},
                 2 * 5 * 7 * 3 * 49, id="conv2d-to-one-channel"),
    pytest.param("conv", ("N", "C", "H", "W"),
                 {"map": Map(("C",), ("D",)), "over": ("H", "W"), "k": 3, "groups": 2},
                 {"C": 4, "D": 6}, 2 * 6 * 5 * 7 * 2 * 9, id="conv2d-grouped"),
    pytest.param("conv", ("N", "C", "H", "W"),
                 {"map": Map(("C",), ("D",)), "over": ("W", "H"), "k": 3, "dilation": 2,
                  "groups": 2}, {"C": 4, "D": 6}, 2 * 6 * 5 * 7 * 2 * 9,
                 id="conv2d-grouped-dilated"),
    pytest.param("conv", ("N", "C", "H", "W"),
                 {"map": Map(("C",), ("C",)), "over": ("H", "W"), "k": 5, "groups": 6}, {},
                 2 * 6 * 5 * 7 * 1 * 25, id="conv2d-depthwise"),
    pytest.param("conv", ("H", "C", "N"),
                 {"map": Map(("C",), ("D",)), "over": ("H",), "k": 3, "dilation": 2},
                 {"D": 4}, 5 * 4 * 2 * 6 * 3, id="conv1d-permuted-dilated"),
]


def _mac_ir(name, dims, attrs, sizes) -> IR:
    ir = single_op(get_op(name), [dims], attrs, {**SIZES, **sizes})
    run_pipeline(ir)
    return ir


@pytest.mark.parametrize(("name", "dims", "attrs", "sizes", "macs"), MAC_CASES)
def test_flops_are_twice_the_macs(name, dims, attrs, sizes, macs):
    ir = _mac_ir(name, dims, attrs, sizes)
    assert ir.cost(ir.outputs[0][1]).flops == 2 * macs


@pytest.mark.parametrize(("name", "dims", "attrs", "sizes", "macs"), MAC_CASES)
def test_flops_match_torch_flop_counter(name, dims, attrs, sizes, macs):
    # an independent count: torch's FlopCounterMode sees the matmul/conv the module runs
    ir = _mac_ir(name, dims, attrs, sizes)
    module = build_module(ir).eval()
    args = [torch.from_numpy(x) for x in h.make_inputs(ir, {}, seed=0).values()]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    assert counter.get_total_flops() == ir.cost(ir.outputs[0][1]).flops


@pytest.mark.parametrize(("name", "dims", "attrs", "sizes", "macs"), MAC_CASES)
def test_cost_counts_parameter_bytes(name, dims, attrs, sizes, macs):
    ir = _mac_ir(name, dims, attrs, sizes)
    y = ir.outputs[0][1]
    x = ir.inputs[0]
    tensors = np.prod(ir.shape(ir.node(x).out)) + np.prod(ir.shape(ir.node(y).out))
    assert ir.cost(y).bytes_moved == 4 * (tensors + ir.parameter_count())


def test_cost_needs_every_size():
    ir = single_op(get_op("mean"), [("N", "C", "H")], {"over": ("H",)}, {"C": 6})
    with pytest.raises(InternalError, match="needs the sizes of its run-time dims"):
        ir.cost(ir.outputs[0][1])
    assert ir.cost(ir.outputs[0][1], bind={"N": 2, "H": 5}).flops == 2 * 6 * 5


# ---- the conv rule: its output keeps the `over` dims, so padding must keep their sizes ----
@pytest.mark.parametrize(("k", "dilation", "padding"), [
    pytest.param(3, 1, None, id="k3-default"),
    pytest.param(3, 1, 1, id="k3-same"),
    pytest.param(5, 2, 4, id="k5-d2-same"),
    pytest.param(7, 3, None, id="k7-d3-default"),
])
def test_conv_same_padding_keeps_sizes(k, dilation, padding):
    attrs = {"over": ("T",), "k": k, "dilation": dilation, "padding": padding}
    ir = build(get_op("conv"), Sample(inputs=(("N", "T"),), attrs=attrs, sizes={"T": 17}))
    module = build_module(ir)
    inputs = h.make_inputs(ir, {}, seed=0)
    results = h.assert_backends_agree(h.randomize_(module, 0), inputs, label="conv-padding")
    assert results["numpy"]["y"].shape == (2, 17)


RESIZES = r"changes the size of `T`, so its output dims need new names"


@pytest.mark.parametrize(("k", "dilation", "padding"), [
    pytest.param(3, 1, 0, id="k3-valid"),
    pytest.param(3, 2, 1, id="k3-d2-too-small"),
    pytest.param(3, 1, 2, id="k3-too-large"),
    pytest.param(4, 1, None, id="k4-even"),
    pytest.param(4, 1, 2, id="k4-even-padded"),
])
def test_conv_that_resizes_needs_new_names(k, dilation, padding):
    attrs = {"over": ("T",), "k": k, "dilation": dilation, "padding": padding}
    with pytest.raises(OpError, match=RESIZES):
        single_op(get_op("conv"), [("N", "T")], attrs, SIZES)


@pytest.mark.parametrize(("k", "stride", "dilation", "padding", "size"), [
    pytest.param(3, 2, 1, None, 9, id="k3-s2"),       # (17 + 2 - 2 - 1) // 2 + 1
    pytest.param(3, 1, 1, 0, 15, id="k3-valid"),
    pytest.param(4, 3, 2, 1, 5, id="k4-s3-d2"),       # (17 + 2 - 6 - 1) // 3 + 1
])
def test_conv_that_resizes_renames_and_agrees(k, stride, dilation, padding, size):
    attrs = {"over": ("T",), "k": k, "stride": stride, "dilation": dilation,
             "padding": padding, "to": ("U",), "map": Map(("C",), ("D",))}
    ir = build(get_op("conv"), Sample(inputs=(("N", "C", "T"),), attrs=attrs,
                                      sizes={"T": 17, "D": 4}))
    assert ir.dims["U"] == size
    module = h.randomize_(build_module(ir), 0)
    results = h.assert_backends_agree(module, h.make_inputs(ir, {}, seed=0), label="conv-stride")
    assert results["numpy"]["y"].shape == (2, 4, size)


def test_conv_resize_error_in_a_spec_points_at_the_argument():
    spec = """block P(x: [N, C, H, W]) {
  s = conv(mean(x, over=H W), over=C, k=3, padding=0, bias=false)
  return s
}"""
    with pytest.raises(AttnccError, match="changes the size of `C`") as info:
        elaborate(spec, hyper_values={"C": 8})
    span = info.value.diagnostics[0].span
    assert (span.line, span.col) == (2, 44)


# ---- the builder itself ----
@pytest.mark.parametrize(("name", "inputs", "attrs", "message"), [
    pytest.param("mean", [("N", "C")], {"over": ("C",), "axis": 1}, "no attribute `axis`",
                 id="unknown-attribute"),
    pytest.param("mean", [("N", "C")], {}, "needs `over`", id="missing-attribute"),
    pytest.param("add", [("N", "C")], {}, "takes 2 tensors, not 1", id="tensor-count"),
    pytest.param("dense", [("N", "C")], {"map": Map(("C",), ("Q",))}, "size of `Q`",
                 id="unsized-dim"),
])
def test_single_op_rejects_bad_cases(name, inputs, attrs, message):
    with pytest.raises(OpError, match=message):
        single_op(get_op(name), inputs, attrs, SIZES)
