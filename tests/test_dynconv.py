"""dynamic_conv: 2-D and 3-D kernels through the three backends, against a per-sample torch
loop, one ONNX model at several batch and spatial sizes, its cost, and its diagnostics.

The per-op samples (tests/test_ops.py) hold 1-D kernels only: a k x k kernel's tap dims share
a size, which that table forbids. Here sizes are distinct wherever the kernel allows it.
"""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch.utils.flop_counter import FlopCounterMode

from attncc.api import onnx_session
from attncc.backends.torch_module import build_module
from attncc.ir import IR, single_op
from attncc.ops import get_op
from attncc.ops.base import Map, OpError
from attncc.passes import run_pipeline

SIZES = {"N": 2, "C": 6, "H": 5, "W": 7, "O": 4, "T": 8}
OP = get_op("dynamic_conv")


def _ir(inputs, attrs, sizes) -> IR:
    ir = single_op(OP, inputs, attrs, {**SIZES, **sizes})
    run_pipeline(ir)
    return ir


# (inputs, attrs, extra sizes): the 2-D and 3-D cases the per-op table cannot hold
CASES = [
    pytest.param((("N", "C", "H", "W"), ("N", "O", "C", "KH", "KW"), ("N", "O")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"),
                  "k": 3}, {"KH": 3, "KW": 3}, id="dense-3x3-bias"),
    pytest.param((("N", "C", "H", "W"), ("KW", "C", "N", "O", "KH")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"),
                  "k": 5, "dilation": 2}, {"KH": 5, "KW": 5}, id="dense-5x5-dil2-permuted"),
    pytest.param((("N", "C", "H", "W"), ("N", "C", "KH", "KW"), ("C",)),
                 {"over": ("W", "H"), "taps": ("KW", "KH"), "k": 3}, {"KH": 3, "KW": 3},
                 id="depthwise-3x3-over-WH"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "Cg", "KH", "KW")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"),
                  "k": 3, "groups": 2}, {"Cg": 3, "O": 8, "KH": 3, "KW": 3},
                 id="grouped-3x3"),
    pytest.param((("N", "C", "T", "H", "W"), ("N", "C", "KT", "KH", "KW")),
                 {"over": ("T", "H", "W"), "taps": ("KT", "KH", "KW"), "k": 3},
                 {"KT": 3, "KH": 3, "KW": 3}, id="depthwise-3d"),
    pytest.param((("N", "H", "W", "T"), ("N", "KH", "KW")),
                 {"over": ("H", "W"), "taps": ("KH", "KW"), "k": 3}, {"KH": 3, "KW": 3},
                 id="no-channel-2d-carried-T"),
    pytest.param((("N", "C", "H", "W"), ("P", "N", "C", "O"), ("N", "O")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("P",), "k": 5},
                 {"P": 25}, id="dense-flat-5x5-permuted"),
    pytest.param((("N", "C", "T", "H", "W"), ("N", "C", "P")),
                 {"over": ("T", "H", "W"), "taps": ("P",), "k": 3}, {"P": 27},
                 id="depthwise-3d-flat"),
    pytest.param((("N", "C", "T", "H", "W"), ("N", "O", "C", "K"), ("O", "N")),
                 {"map": Map(("C",), ("O",)), "over": ("T",), "taps": ("K",), "k": 3},
                 {"K": 3}, id="dense-1d-two-carried"),
]


@pytest.mark.parametrize(("inputs", "attrs", "sizes"), CASES)
def test_backends_agree(inputs, attrs, sizes, request):
    ir = _ir(inputs, attrs, sizes)
    module = h.randomize_(build_module(ir), 0)
    h.assert_backends_agree(module, h.make_inputs(ir, {}, seed=1),
                            label=request.node.callspec.id)


def _reference(x, w, b, groups, dilation, nd):
    """Each sample convolved with its own kernel by F.conv{nd}d; x [N, C, *sp], w [N, O, ...]."""
    conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    k = w.shape[-1]
    ys = [conv(x[i : i + 1], w[i], None if b is None else b[i], 1,
               dilation * (k - 1) // 2, dilation, groups) for i in range(x.shape[0])]
    return torch.cat(ys)


@pytest.mark.parametrize(("groups", "dilation"), [(1, 1), (3, 2)])
def test_matches_a_per_sample_conv_loop(groups, dilation):
    cg = 6 // groups
    ir = _ir((("N", "C", "H", "W"), ("N", "O", "Cg" if groups > 1 else "C", "KH", "KW"),
              ("N", "O")),
             {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"), "k": 3,
              "dilation": dilation, "groups": groups},
             # batch and map sizes left to run time: the module runs at 3 x 11 x 13
             {"O": 9, "Cg": cg, "KH": 3, "KW": 3, "N": None, "H": None, "W": None})
    module = build_module(ir).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, 11, 13, generator=gen)
    w = torch.randn(3, 9, cg, 3, 3, generator=gen)
    b = torch.randn(3, 9, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(module(x, w, b), _reference(x, w, b, groups, dilation, 2),
                                   rtol=1e-5, atol=1e-5)


def test_depthwise_temporal_kernel_matches_tam_code():
    """TAM's own call: x viewed as [1, N·C, T, H·W], kernel [N·C, 1, K, 1], groups N·C."""
    ir = _ir((("N", "C", "T", "H", "W"), ("N", "C", "K")),
             {"over": ("T",), "taps": ("K",), "k": 3}, {"K": 3})
    module = build_module(ir).eval()
    gen = torch.Generator().manual_seed(1)
    n, c, t, hh, ww = 2, 6, 8, 5, 7
    x = torch.randn(n, c, t, hh, ww, generator=gen)
    kernel = torch.randn(n, c, 3, generator=gen)
    expected = F.conv2d(x.view(1, n * c, t, hh * ww), kernel.view(n * c, 1, -1, 1), bias=None,
                        stride=(1, 1), padding=(1, 0), groups=n * c)
    with torch.no_grad():
        torch.testing.assert_close(module(x, kernel), expected.view(n, c, t, hh, ww))


def test_onnx_is_shift_einsum_and_serves_every_size():
    ir = _ir((("N", "C", "H", "W"), ("N", "O", "C", "KH", "KW"), ("N", "O")),
             {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"), "k": 3},
             {"KH": 3, "KW": 3})
    module = h.randomize_(build_module(ir), 0)
    model = h.onnx_model(module)
    ops = {node.op_type for node in model.graph.node}
    assert "Conv" not in ops
    assert {"Pad", "Slice", "Einsum"} <= ops
    assert sum(node.op_type == "Slice" for node in model.graph.node) == 9
    sess = onnx_session(model, optimize=False)
    for n, hh, ww in [(1, 3, 4), (5, 9, 2), (2, 1, 1)]:
        inputs = h.make_inputs(ir, {"N": n, "H": hh, "W": ww}, seed=n)
        got = sess.run(None, inputs)[0]
        np.testing.assert_allclose(got, h.run_numpy(module, inputs)["y"], rtol=1e-4, atol=1e-5)


def test_torch_module_handles_a_run_time_batch():
    ir = _ir((("N", "C", "T", "H", "W"), ("N", "C", "K")),
             {"over": ("T",), "taps": ("K",), "k": 3}, {"K": 3})
    module = build_module(ir).eval()
    for n in (1, 4):
        inputs = h.make_inputs(ir, {"N": n}, seed=n)
        got = module(*(torch.from_numpy(v) for v in inputs.values()))
        np.testing.assert_allclose(got.numpy(), h.run_numpy(module, inputs)["y"], rtol=1e-5,
                                   atol=1e-6)


# ---- cost: the multiply-accumulates of the per-sample convolution ----
@pytest.mark.parametrize(("inputs", "attrs", "sizes", "macs"), [
    pytest.param((("N", "C", "H", "W"), ("N", "O", "C", "KH", "KW")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"),
                  "k": 3}, {"KH": 3, "KW": 3}, 2 * 4 * 5 * 7 * 6 * 9, id="dense"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "Cg", "KH", "KW")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"),
                  "k": 3, "groups": 3}, {"Cg": 2, "O": 9, "KH": 3, "KW": 3},
                 2 * 9 * 5 * 7 * 2 * 9, id="grouped"),
    pytest.param((("N", "C", "T", "H", "W"), ("N", "C", "K")),
                 {"over": ("T",), "taps": ("K",), "k": 3}, {"K": 3},
                 2 * 6 * 8 * 5 * 7 * 3, id="depthwise-carried"),
    pytest.param((("W", "C", "N", "H"), ("P", "C", "N", "O")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("P",), "k": 3},
                 {"P": 9}, 2 * 4 * 5 * 7 * 6 * 9, id="dense-permuted-flat"),
    pytest.param((("N", "C", "H", "W"), ("KW", "Cg", "O", "KH", "N")),
                 {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"),
                  "k": 3, "groups": 2}, {"Cg": 3, "O": 8, "KH": 3, "KW": 3},
                 2 * 8 * 5 * 7 * 3 * 9, id="grouped-permuted"),
    pytest.param((("T", "N"), ("K", "N")), {"over": ("T",), "taps": ("K",), "k": 5},
                 {"K": 5}, 2 * 8 * 5, id="no-channel"),
])
def test_cost_counts_the_real_macs(inputs, attrs, sizes, macs):
    ir = _ir(inputs, attrs, sizes)
    assert ir.cost(ir.outputs[0][1]).flops == 2 * macs
    module = build_module(ir).eval()
    args = [torch.from_numpy(x) for x in h.make_inputs(ir, {}, seed=0).values()]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    assert counter.get_total_flops() == 2 * macs


# ---- diagnostics ----
DENSE = (("N", "C", "H", "W"), ("N", "O", "C", "KH", "KW"))
DENSE_ATTRS = {"map": Map(("C",), ("O",)), "over": ("H", "W"), "taps": ("KH", "KW"), "k": 3}


@pytest.mark.parametrize(("inputs", "attrs", "sizes", "message", "arg"), [
    pytest.param(DENSE, {**DENSE_ATTRS, "k": 4}, {"KH": 4, "KW": 4}, "needs an odd k, not 4",
                 "k", id="even-k"),
    pytest.param(DENSE, DENSE_ATTRS, {"KH": 3, "KW": 5}, "tap dim `KW` has size 5, but k=3",
                 "taps", id="tap-size"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "D", "KH", "KW")), DENSE_ATTRS,
                 {"D": 3, "KH": 3, "KW": 3}, "input-channel dim must be `C`, not `D`",
                 "groups", id="channel-mismatch"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "D", "KH", "KW")),
                 {**DENSE_ATTRS, "groups": 2}, {"D": 4, "KH": 3, "KW": 3},
                 "groups=2 does not fit", "groups", id="groups-do-not-fit"),
    pytest.param((("N", "C", "H", "W"), ("O", "C", "KH", "KW")), DENSE_ATTRS,
                 {"KH": 3, "KW": 3}, "is not per sample", None, id="no-batch"),
    pytest.param((("N", "C", "H", "W"), ("N", "P", "C", "KH", "KW")), DENSE_ATTRS,
                 {"P": 3, "KH": 3, "KW": 3}, "no output channel dim `O`", "map",
                 id="no-output-channel"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "C", "KH", "KW")),
                 {"over": ("H", "W"), "taps": ("KH", "KW"), "k": 3}, {"KH": 3, "KW": 3},
                 "has dim `O`, which the input", "map", id="depthwise-with-foreign-dim"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "C", "KH", "KW", "KT")),
                 {**DENSE_ATTRS, "taps": ("KH", "KW", "KT")}, {"KH": 3, "KW": 3, "KT": 3},
                 "names 3 kernel dims for the 2 dims", "taps", id="taps-count"),
    pytest.param((("N", "C", "H", "W"), ("N", "O", "C", "P")), {**DENSE_ATTRS, "taps": ("P",)},
                 {"P": 3}, "has size 3, but a flattened 3 x 3 kernel has 9 taps", "taps",
                 id="flat-taps-size"),
    pytest.param(DENSE, {**DENSE_ATTRS, "taps": ("KH", "H")}, {"KH": 3},
                 "the kernel has no tap dim `H`", "taps", id="tap-not-in-kernel"),
    pytest.param(DENSE, {**DENSE_ATTRS, "over": ("H", "Q")}, {"KH": 3, "KW": 3},
                 "runs over `Q`", "over", id="over-not-in-input"),
    pytest.param((*DENSE, ("N", "H")), DENSE_ATTRS, {"KH": 3, "KW": 3},
                 "the bias [N, H] has dim `H`", None, id="bias-dims"),
    pytest.param((DENSE[0],), DENSE_ATTRS, {}, "not 1 tensors", None, id="one-tensor"),
    pytest.param((("N", "C", "T", "H", "W", "L"), ("N", "C", "KT", "KH", "KW")),
                 {"over": ("T", "H", "W"), "taps": ("KT", "KH", "KW"), "k": 3},
                 {"L": 4, "KT": 3, "KH": 3, "KW": 3}, "carries no other dims", "over",
                 id="3d-with-carried"),
    pytest.param((("N", "C", "T"), ("N", "T", "K")), {"over": ("T",), "taps": ("K",), "k": 3},
                 {"K": 3}, "channel dim `T` is a convolved dim", "taps",
                 id="depthwise-channel-is-convolved"),
    pytest.param(DENSE, {**DENSE_ATTRS, "map": Map(("C",), ())}, {"KH": 3, "KW": 3},
                 "maps one channel dim to one", "map", id="map-to-nothing"),
])
def test_bad_calls_get_diagnostics(inputs, attrs, sizes, message, arg):
    with pytest.raises(OpError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        single_op(OP, inputs, attrs, {**SIZES, **sizes})
    assert info.value.arg == arg


def test_a_spec_error_points_at_the_argument():
    from attncc.diagnostics import AttnccError
    from attncc.elaborate import elaborate

    spec = """block B(x: [N, C, T]) {
  dim K = 4
  w = dense(mean(x, over=T), C -> K)
  y = dynamic_conv(x, w, over=T, taps=K, k=4)
  return y
}"""
    with pytest.raises(AttnccError, match="needs an odd k") as info:
        elaborate(spec, hyper_values={"C": 8})
    span = info.value.diagnostics[0].span
    assert (span.line, span.col) == (4, 42)  # `k=4`


@pytest.mark.parametrize(("spec", "hyper", "shape"), [
    pytest.param("condconv", {"C": 12, "out": 16, "experts": 5, "k": 5}, (2, 12, 7, 9),
                 id="condconv"),
    pytest.param("tam", {"C": 24, "T": 8}, (2, 24, 8, 7, 9), id="tam"),
])
def test_torch_export_keeps_batch_and_spatial_dims_dynamic(spec, hyper, shape):
    """The folded-batch conv's group count is N·g, a symbolic size under torch.export."""
    m = h.randomize_(h.compile_spec(spec, hyper), 0).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen)
    dyn = {0: torch.export.Dim("N", min=1), len(shape) - 2: torch.export.Dim("H", min=2),
           len(shape) - 1: torch.export.Dim("W", min=2)}
    ep = torch.export.export(m, (x,), dynamic_shapes={"x": dyn})
    other = torch.randn(3, *shape[1:-2], 5, 11, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(other), m(other), rtol=1e-5, atol=1e-6)
