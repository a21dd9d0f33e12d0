"""The `attend` fusion pass and op: equal outputs and attention maps with and without it on the
specs where it fires, in PyTorch and onnxruntime; where it must not fire; shape errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attncc.api import onnx_session, randomize_, to_onnx
from attncc.backends import numpy_ref
from attncc.backends.torch_module import build_module
from attncc.compiler import compile_ir, read_source
from attncc.dims import TensorType
from attncc.elaborate import elaborate
from attncc.ops import get_op
from attncc.ops.base import OpError
from attncc.passes import plan, run_pipeline

# spec, hyperparameters, input shape (distinct sizes: a swapped axis cannot pass)
FIRES = [
    ("nonlocal", {"C": 24, "r": 2}, (2, 24, 6, 10)),
    ("vit", {"D": 24, "heads": 4}, (3, 7, 24)),
    ("danet", {"C": 16, "r": 4}, (2, 16, 5, 7)),
    ("gltr", {"C": 12}, None),
    ("dnl", {"C": 16, "r": 2}, (2, 16, 5, 7)),  # after algebra splits pairwise + unary
]


def _pair(spec, hyper, shape):
    src = read_source(spec)
    shapes = {"x": shape} if shape else None
    fused = compile_ir(src, hyper, shapes)
    plain = compile_ir(src, hyper, shapes, disable=("attend",))
    return fused, plain


def _input(ir, shape):
    if shape is None:  # gltr: the spec's example with its own sizes
        from attncc.compiler import example_shapes

        shape = example_shapes(read_source(ir.path))["x"]
        shape = (shape[0], ir.dims.get("C") or shape[1], *shape[2:])
    return torch.randn(shape, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(("spec", "hyper", "shape"), FIRES, ids=[f[0] for f in FIRES])
def test_fused_equals_unfused_in_torch_numpy_and_onnxruntime(spec, hyper, shape):
    fused, plain = _pair(spec, hyper, shape)
    assert any(fused.node(n).op == "attend" for n in fused.graph.nodes)
    assert not any(plain.node(n).op == "attend" for n in plain.graph.nodes)
    m_plain = randomize_(build_module(plain), 0).eval()
    m_fused = build_module(fused).eval()
    m_fused.load_state_dict(m_plain.state_dict(), strict=True)
    x = _input(fused, shape)
    with torch.no_grad():
        y0, maps0 = m_plain(x, return_attention=True)
        y1, maps1 = m_fused(x, return_attention=True)
        torch.testing.assert_close(m_fused(x), y0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y1, y0, rtol=1e-4, atol=1e-5)
    assert maps0.keys() == maps1.keys()
    for name in maps0:  # the marked maps are computed exactly as before
        torch.testing.assert_close(maps1[name], maps0[name], rtol=1e-5, atol=1e-6)
    state = {k: v.numpy() for k, v in m_plain.state_dict().items()}
    ref = numpy_ref.run(fused, {"x": x.numpy()}, state)
    np.testing.assert_allclose(ref["y"], y0.numpy(), rtol=1e-4, atol=1e-5)
    for with_maps in (False, True):
        sess = onnx_session(to_onnx(m_fused, attention_outputs=with_maps))
        got = sess.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(got[0], y0.numpy(), rtol=1e-4, atol=1e-5)
        if with_maps:
            for name, arr in zip(maps0, got[1:], strict=True):
                np.testing.assert_allclose(arr, maps0[name].numpy(), rtol=1e-4, atol=1e-6)


def test_fused_module_has_the_same_gradients():
    fused, plain = _pair(*FIRES[0])
    m_plain = randomize_(build_module(plain), 0).double()
    m_fused = build_module(fused).double()
    m_fused.load_state_dict(m_plain.state_dict())
    x = torch.randn(2, 24, 6, 10, dtype=torch.float64)
    for m in (m_plain, m_fused):
        m(x).square().sum().backward()
    for (name, p0), (_, p1) in zip(m_plain.named_parameters(), m_fused.named_parameters(),
                                   strict=True):
        torch.testing.assert_close(p1.grad, p0.grad, rtol=1e-7, atol=1e-9, msg=name)


def test_no_scores_matrix_unless_the_maps_are_asked_for():
    fused, _ = _pair(*FIRES[0])
    src = build_module(fused).source
    lazy = src.split("if return_attention:")[-1]
    assert "scaled_dot_product_attention" in src
    forward = src[src.index("def forward"):src.index("if return_attention:")]
    assert "einsum" not in forward and "logsumexp" not in forward
    assert "einsum" in lazy


def test_switched_off_at_o0_and_by_disable():
    assert "attend" in plan()
    assert "attend" not in plan(opt_level=0)
    assert "attend" not in plan(disable=("attend",))


@pytest.mark.parametrize("text", [
    # the weights are an output: fusing would compute them twice
    "block B(q: [N, D, L], k: [N, D, M], v: [N, E, M]) {\n"
    "  a = softmax(contract(q, k, over=D), over=M)\n  return contract(a, v, over=M), a }",
    # the scores feed something else too
    "block B(q: [N, D, L], k: [N, D, M], v: [N, E, M]) {\n"
    "  s = contract(q, k, over=D)\n  a = softmax(s, over=M)\n"
    "  return contract(a, v, over=M) + sum(s, over=M) }",
    # not a softmax over the summed keys
    "block B(q: [N, D, L], k: [N, D, M], v: [N, E, M]) {\n"
    "  a = sigmoid(contract(q, k, over=D))\n  return contract(a, v, over=M) }",
    # a query-dependent value: no fused form
    "block B(q: [N, D, L], k: [N, D, M], v: [N, L, M]) {\n"
    "  a = softmax(contract(q, k, over=D), over=M)\n  return contract(a, v, over=M) }",
])
def test_does_not_fire(text):
    ir = elaborate(text)
    run_pipeline(ir)
    assert not any(ir.node(n).op == "attend" for n in ir.graph.nodes)


def test_fires_on_a_plain_block_with_a_scale_on_either_side():
    ir = elaborate("block B(q: [N, D, L], k: [N, D, M], v: [N, E, M]) {\n"
                   "  a = softmax(0.5 * contract(q, k, over=D), over=M)\n"
                   "  return contract(a, v, over=M) }")
    run_pipeline(ir)
    (n,) = [n for n in ir.graph.nodes if ir.node(n).op == "attend"]
    assert ir.node(n).attrs["scale"] == 0.5


def test_shape_errors_name_the_argument():
    op = get_op("attend")
    t = lambda *d: TensorType(d)  # noqa: E731
    with pytest.raises(OpError) as err:
        op.infer(None, [t("N", "L", "D"), t("N", "M", "D"), t("N", "M", "E")],
                 {"over": ("X",), "keys": ("M",), "scale": 1.0})
    assert err.value.arg == "over"
    with pytest.raises(OpError) as err:
        op.infer(None, [t("N", "L", "D"), t("N", "M", "D"), t("N", "L", "E")],
                 {"over": ("D",), "keys": ("M",), "scale": 1.0})
    assert err.value.arg == "keys"
    with pytest.raises(OpError) as err:
        op.infer(None, [t("N", "L", "D"), t("N", "M", "D"), t("M", "E")],
                 {"over": ("D",), "keys": ("M",), "scale": 1.0})
    assert err.value.arg == "v"


@pytest.mark.parametrize(("b", "n", "s", "e", "ev", "budget"), [
    (3, 7, 5, 4, 6, 1 << 22),  # whole batch entries in one block
    (5, 11, 6, 3, 2, 4 * 6 * 22),  # two entries (22 rows) per block, a partial last block
    (2, 13, 9, 5, 4, 4 * 9 * 4),  # 4 query rows at a time, 13 = 3 * 4 + 1
    (2, 3, 8, 2, 3, 1),  # a budget below one row still takes one row
])
def test_blocked_attention_equals_sdpa(b, n, s, e, ev, budget):
    """The generated module's eager-inference attention (ops/attend.py ATTEND) against
    F.scaled_dot_product_attention, in each of its blockings."""
    ir = compile_ir(read_source("vit"), {"D": 24, "heads": 4})
    attend = build_module(ir, "").forward.__globals__["_attend"]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, n, e, generator=g), torch.randn(b, s, e, generator=g),
               torch.randn(b, s, ev, generator=g))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=0.7)
    with torch.no_grad():
        got = attend(q, k, v, 0.7, budget)
        unscaled = attend(q, k, v, 1.0, budget)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        unscaled, torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0),
        rtol=1e-5, atol=1e-6)
    assert attend(q, k, v, 0.7, budget).requires_grad is False  # grad on: SDPA, same value
    q.requires_grad_(True)
    torch.testing.assert_close(attend(q, k, v, 0.7, budget), want, rtol=1e-5, atol=1e-6)
