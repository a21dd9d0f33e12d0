"""The generated torch.nn.Module: names, dtype and device moves, attention maps, tracing."""

from __future__ import annotations

import importlib.util
import sys

import _harness as h
import numpy as np
import pytest
import torch

SE = ("se", {"C": 24, "r": 4})
ECA = ("eca", {"C": 24})
CBAM = ("cbam", {"C": 24, "r": 4, "k": 7})
BLOCKS = [pytest.param(*SE, id="se"), pytest.param(*ECA, id="eca"),
          pytest.param(*CBAM, id="cbam")]
SIZES = {"N": 3, "H": 7, "W": 9}

PARAMETERS = {
    "se": ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
    "eca": ["s.weight"],
    "cbam": ["mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias", "s_s.conv.weight",
             "s_s.batch_norm.weight", "s_s.batch_norm.bias"],
}
BUFFERS = {
    "se": [],
    "eca": [],
    "cbam": ["s_s.batch_norm.running_mean", "s_s.batch_norm.running_var",
             "s_s.batch_norm.num_batches_tracked"],
}
SHAPES = {
    "se": {"fc1.weight": (6, 24), "fc1.bias": (6,), "fc2.weight": (24, 6), "fc2.bias": (24,)},
    "eca": {"s.weight": (1, 1, 3)},
    "cbam": {"mlp.0.weight": (6, 24), "mlp.0.bias": (6,), "mlp.2.weight": (24, 6),
             "mlp.2.bias": (24,), "s_s.conv.weight": (1, 2, 7, 7), "s_s.batch_norm.weight": (1,),
             "s_s.batch_norm.bias": (1,), "s_s.batch_norm.running_mean": (1,),
             "s_s.batch_norm.running_var": (1,), "s_s.batch_norm.num_batches_tracked": ()},
}
ATTENTION = {"se": {"s": ("N", "C")}, "eca": {"s": ("N", "C")},
             "cbam": {"s_c": ("N", "C"), "s_s": ("N", "H", "W")}}


def _module(spec, hyper, seed=0):
    return h.randomize_(h.compile_spec(spec, hyper), seed + 7)


def _x(hyper, sizes=SIZES, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(sizes["N"], hyper["C"], sizes["H"], sizes["W"], generator=g)


# ---- names ----
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_parameter_and_buffer_names_are_the_specs(spec, hyper):
    m = h.compile_spec(spec, hyper)
    assert [k for k, _ in m.named_parameters()] == PARAMETERS[spec]
    assert [k for k, _ in m.named_buffers()] == BUFFERS[spec]
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == SHAPES[spec]


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_parameter_names_are_stable_across_compiles(spec, hyper):
    a = h.compile_spec(spec, hyper, seed=0)
    b = h.compile_spec(spec, hyper, seed=1)
    assert list(a.state_dict()) == list(b.state_dict())
    assert a.source == b.source


# ---- dtype and device ----
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_to_float64_moves_every_float_tensor(spec, hyper):
    m = _module(spec, hyper).eval()
    x = _x(hyper)
    with torch.no_grad():
        y32 = m(x)
    assert m.to(torch.float64) is m
    for k, v in m.state_dict().items():
        assert v.dtype == (torch.int64 if k.endswith("num_batches_tracked") else torch.float64), k
    with torch.no_grad():
        y64 = m(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), y32, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_cuda_matches_cpu(spec, hyper):
    m = _module(spec, hyper).eval()
    x = _x(hyper)
    with torch.no_grad():
        want = m(x)
        got = m.to("cuda")(x.cuda()).cpu()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


# ---- attention maps ----
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_return_attention_gives_the_maps_by_name(spec, hyper):
    m = _module(spec, hyper).eval()
    x = _x(hyper)
    with torch.no_grad():
        y, att = m(x, return_attention=True)
        torch.testing.assert_close(y, m(x), rtol=0, atol=0)
    sizes = {**SIZES, "C": hyper["C"]}
    assert list(att) == list(ATTENTION[spec]) == list(m.attention_names)
    ref = h.run_numpy(m, {"x": x.numpy()})
    for name, dims in ATTENTION[spec].items():
        assert tuple(att[name].shape) == tuple(sizes[d] for d in dims), name
        assert torch.all((att[name] > 0) & (att[name] < 1)), f"{name} is not a sigmoid gate"
        np.testing.assert_allclose(att[name].numpy(), ref[f"attention.{name}"],
                                   rtol=1e-4, atol=1e-5, err_msg=name)


# ---- tracing, export, compile ----
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_jit_trace_serves_other_shapes(spec, hyper):
    m = _module(spec, hyper).eval()
    traced = torch.jit.trace(m, (_x(hyper),))
    other = _x(hyper, {"N": 2, "H": 5, "W": 11}, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(traced(other), m(other), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_torch_export_with_dynamic_batch_and_spatial_dims(spec, hyper):
    m = _module(spec, hyper).eval()
    dyn = {0: torch.export.Dim("N", min=1), 2: torch.export.Dim("H", min=2),
           3: torch.export.Dim("W", min=2)}
    ep = torch.export.export(m, (_x(hyper),), dynamic_shapes={"x": dyn})
    assert {s.target for s in ep.graph_signature.input_specs if s.target} == set(m.state_dict())
    other = _x(hyper, {"N": 2, "H": 5, "W": 11}, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(other), m(other), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_torch_compile_fullgraph(spec, hyper):
    # aot_eager, not inductor: inductor needs ~20 s per block on two CPU cores. aot_eager
    # still captures the whole forward (fullgraph) and traces autograd through it.
    m, eager = _module(spec, hyper), _module(spec, hyper)  # same weights, separate buffers
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    x = _x(hyper)
    m.eval()
    eager.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), eager(x), rtol=1e-5, atol=1e-6)
    m.train()
    eager.train()
    y, y_eager = compiled(x), eager(x)
    torch.testing.assert_close(y, y_eager, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    y_eager.sum().backward()
    grads = dict(eager.named_parameters())
    for name, p in m.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-5)
    for k, v in eager.state_dict().items():
        torch.testing.assert_close(m.state_dict()[k], v, rtol=1e-5, atol=1e-6)


# ---- the standalone file ----
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_generated_source_runs_without_attncc(spec, hyper, tmp_path, monkeypatch):
    m = _module(spec, hyper).eval()
    path = tmp_path / f"{spec}_block.py"
    path.write_text(m.source, encoding="utf-8")
    assert "attncc" not in "".join(ln for ln in m.source.splitlines()
                                   if ln.startswith(("import", "from")))
    monkeypatch.setitem(sys.modules, "attncc", None)  # any `import attncc` would now fail
    loader = importlib.util.spec_from_file_location(f"{spec}_block", path)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    standalone = getattr(mod, m.ir.block)()
    standalone.load_state_dict(m.state_dict(), strict=True)
    standalone.eval()
    x = _x(hyper)
    with torch.no_grad():
        torch.testing.assert_close(standalone(x), m(x), rtol=0, atol=0)


def test_inputs_of_the_wrong_rank_or_fixed_size_are_refused_by_name():
    import attncc

    m = attncc.load("fcanet", C=32, H=7, W=5)
    want = r"input `x` must be \[N, C=32, H=7, W=5\], got \[2, 32, 9, 9\]"
    with pytest.raises(ValueError, match=want):
        m(torch.randn(2, 32, 9, 9))
    with pytest.raises(ValueError, match=r"got \[32, 7, 5\]"):
        m(torch.randn(32, 7, 5))
    assert m(torch.randn(3, 32, 7, 5)).shape == (3, 32, 7, 5)  # any batch size
