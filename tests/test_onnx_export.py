"""The ONNX backend: a valid opset-18 model named after the spec, loadable at every ORT
optimisation level, written atomically and deterministically."""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import _harness as h
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import attncc
import attncc.backends.onnx_export as onnx_export
from attncc.backends.ort import session
from attncc.diagnostics import ExportError

BLOCKS = [
    pytest.param("se", {"C": 24, "r": 4}, id="se"),
    pytest.param("eca", {"C": 40, "gamma": 1, "b": 2}, id="eca"),
    pytest.param("cbam", {"C": 24, "r": 4, "k": 7}, id="cbam"),
]
SIZES = {"N": 3, "H": 7, "W": 9}
POOLS = {"GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool", "LpPool"}


def _module(spec, hyper):
    return h.randomize_(h.compile_spec(spec, hyper), 11)


def _op_nodes(ir):
    return [ir.node(n) for n in ir.topo() if ir.node(n).op not in ("input", "param")]


@pytest.mark.parametrize("attention_outputs", [False, True], ids=["plain", "attention"])
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_model_passes_full_check(spec, hyper, attention_outputs, tmp_path):
    m = _module(spec, hyper)
    model = attncc.to_onnx(m, attention_outputs=attention_outputs)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "m.onnx"
    attncc.export_onnx(m, path, attention_outputs=attention_outputs)
    onnx.checker.check_model(str(path), full_check=True)
    want = [name for name, _ in m.ir.outputs]
    if attention_outputs:
        want += [f"attention.{a}" for a in m.ir.attention]
    assert [o.name for o in model.graph.output] == want


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_default_opset_is_18(spec, hyper):
    model = attncc.to_onnx(_module(spec, hyper))
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 18)]


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_reductions_lower_to_reduce_ops(spec, hyper):
    m = _module(spec, hyper)
    ops = Counter(n.op_type for n in attncc.to_onnx(m).graph.node)
    ir_ops = Counter(nd.op for nd in _op_nodes(m.ir))
    assert not POOLS & set(ops), f"pooling ops in the graph: {POOLS & set(ops)}"
    assert ops["ReduceMean"] == ir_ops["mean"] >= 1
    assert ops["ReduceMax"] == ir_ops["max"]


def test_cbam_has_two_of_each_reduction():
    ops = Counter(n.op_type for n in attncc.to_onnx(_module(*BLOCKS[2].values)).graph.node)
    assert (ops["ReduceMean"], ops["ReduceMax"]) == (2, 2)


NAMED = {
    "se": ["squeeze/z/", "excite/fc1/", "excite/fc2/", "excite/s/", "gate/y/"],
    "eca": ["squeeze/z/", "excite/s.conv/", "excite/s/", "gate/y/"],
    "cbam": ["squeeze/s_c/", "squeeze/mlp.0/", "gate/x1/", "squeeze/z/", "excite/s_s.conv/",
             "excite/s_s.batch_norm/", "excite/s_s/", "gate/y/"],
}


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_node_names_carry_stage_and_spec_name(spec, hyper):
    m = _module(spec, hyper)
    names = [n.name for n in attncc.to_onnx(m).graph.node]
    assert len(set(names)) == len(names), "node names must be unique"
    for prefix in NAMED[spec]:
        assert any(n.startswith(prefix) for n in names), f"no node named {prefix}*: {names}"
    for nd in _op_nodes(m.ir):
        if nd.stage and nd.op not in ("scalar", "rename"):
            prefix = f"{nd.stage}/{nd.name}/"
            assert any(n.startswith(prefix) for n in names), f"{nd.name}: no {prefix}*"


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_initializers_are_the_state_dict(spec, hyper):
    m = _module(spec, hyper)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in attncc.to_onnx(m).graph.initializer}
    state = attncc.state_arrays(m)
    weights = {k for k in inits if not k.startswith("const_")}
    # num_batches_tracked only counts training steps; ONNX runs inference
    assert weights == {k for k in state if not k.endswith("num_batches_tracked")}
    for k in weights:
        np.testing.assert_array_equal(inits[k], state[k], err_msg=k)
        assert inits[k].dtype == np.float32, k


def test_checker_failures_become_export_errors(monkeypatch):
    def reject(model, full_check=False):
        raise onnx.shape_inference.InferenceError("[ShapeInferenceError] shapes differ")

    monkeypatch.setattr(onnx.checker, "check_model", reject)
    with pytest.raises(ExportError, match=r"failed onnx\.checker"):
        attncc.to_onnx(_module(*BLOCKS[0].values))


LEVELS = [pytest.param(level, id=name.removeprefix("ORT_").lower())
          for name, level in ort.GraphOptimizationLevel.__members__.items()]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_session_loads_at_every_optimisation_level(spec, hyper, level):
    m = _module(spec, hyper)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    sess = ort.InferenceSession(attncc.to_onnx(m).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    x = h.make_inputs(m.ir, SIZES, seed=1)
    np.testing.assert_allclose(sess.run(None, x)[0], h.run_numpy(m, x)["y"],
                               rtol=h.RTOL, atol=h.ATOL)


@pytest.mark.parametrize("optimize", [False, True], ids=["unoptimised", "optimised"])
@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_attncc_session_factory(spec, hyper, optimize):
    m = _module(spec, hyper)
    sess = session(attncc.to_onnx(m), optimize=optimize)
    want = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
            else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    assert sess.get_session_options().graph_optimization_level == want
    x = h.make_inputs(m.ir, SIZES, seed=2)
    np.testing.assert_allclose(sess.run(None, x)[0], h.run_numpy(m, x)["y"],
                               rtol=h.RTOL, atol=h.ATOL)


@pytest.mark.cuda
def test_cuda_execution_provider():
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here")
    m = _module(*BLOCKS[2].values)
    x = h.make_inputs(m.ir, SIZES, seed=3)
    got = session(attncc.to_onnx(m), device="cuda").run(None, x)[0]
    np.testing.assert_allclose(got, h.run_numpy(m, x)["y"], rtol=h.RTOL, atol=h.ATOL)


# ---- files ----
def test_export_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(onnx_export, "build_model", broken)
    with pytest.raises(RuntimeError, match="boom"):
        attncc.export_onnx(_module(*BLOCKS[0].values), tmp_path / "se.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failed_rename_leaves_no_temp_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "se.onnx"
    target.write_bytes(b"old")

    def broken(src, dst):
        assert Path(src).stat().st_size > 0  # the data went to a temporary file first
        raise OSError("disk full")

    monkeypatch.setattr(onnx_export.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        attncc.export_onnx(_module(*BLOCKS[0].values), target)
    assert [p.name for p in tmp_path.iterdir()] == ["se.onnx"]
    assert target.read_bytes() == b"old"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)],
                         ids=["umask022", "umask002"])
def test_exported_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        attncc.export_onnx(_module(*BLOCKS[0].values), tmp_path / "se.onnx")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "se.onnx").stat().st_mode) == mode


@pytest.mark.parametrize(("spec", "hyper"), BLOCKS)
def test_exports_with_the_same_weights_are_byte_identical(spec, hyper, tmp_path):
    a = _module(spec, hyper)
    b = h.compile_spec(spec, hyper, seed=5)
    b.load_state_dict(a.state_dict())
    attncc.export_onnx(a, tmp_path / "a.onnx")
    attncc.export_onnx(b, tmp_path / "b.onnx")
    attncc.export_onnx(a, tmp_path / "c.onnx")
    data = (tmp_path / "a.onnx").read_bytes()
    assert data == (tmp_path / "b.onnx").read_bytes() == (tmp_path / "c.onnx").read_bytes()
    assert data == attncc.to_onnx(a).SerializeToString()


def test_export_from_a_spec_path(tmp_path):
    path = tmp_path / "cbam.onnx"
    model = attncc.export_onnx(h.SPECS_DIR / "cbam.attn", path, C=24, r=4, k=3)
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == model.SerializeToString()
    (inp,) = loaded.graph.input
    assert inp.type.tensor_type.shape.dim[1].dim_value == 24
    weights = {t.name: t for t in loaded.graph.initializer}
    assert tuple(weights["s_s.conv.weight"].dims) == (1, 2, 3, 3)


# specs whose lowerings use the operators that change between opsets 18 and 21 (GridSample's
# mode names at 20) or that most exports contain (reductions, Einsum, Resize-free resampling)
OPSET_SPECS = [
    pytest.param("stn", {"C": 3}, id="stn"),
    pytest.param("dcn", {"C": 12, "modulated": True}, id="dcn-v2"),
    pytest.param("cbam", {"C": 24, "r": 4, "k": 7}, id="cbam"),
    pytest.param("attgate", {"C": 24, "Cg": 20, "inter": 12}, id="attgate"),
]


@pytest.mark.parametrize("opset", [18, 19, 20, 21])
@pytest.mark.parametrize(("spec", "hyper"), OPSET_SPECS)
def test_every_supported_opset_gives_the_same_function(spec, hyper, opset):
    m = _module(spec, hyper)
    model = attncc.to_onnx(m, opset=opset)
    assert model.opset_import[0].version == opset
    onnx.checker.check_model(model, full_check=True)
    inputs = h.make_inputs(m.ir, {"N": 2, "H": 10, "W": 13, "Hg": 4, "Wg": 5}, seed=3)
    assert attncc.verify_onnx(m, model, inputs) < 1e-4


@pytest.mark.parametrize("opset", [17, 22])
def test_unsupported_opsets_are_refused(opset):
    with pytest.raises(ExportError, match=r"opset .* is not supported; choose one of 18\.\.21"):
        attncc.to_onnx(h.compile_spec("se", {"C": 24, "r": 4}), opset=opset)


def test_static_export_fixes_the_input_shapes(tmp_path):
    m = _module("cbam", {"C": 24, "r": 4, "k": 7})
    model = attncc.export_onnx(m, tmp_path / "s.onnx", dynamic=False,
                               shapes={"x": (2, 24, 9, 11)})
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 24, 9, 11]
    x = np.random.default_rng(0).standard_normal((2, 24, 9, 11)).astype(np.float32)
    assert attncc.verify_onnx(m, model, {"x": x}) < 1e-5
    # without shapes, the spec's `example` line gives them, with C as compiled
    model = attncc.export_onnx(m, tmp_path / "e.onnx", dynamic=False)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == \
        [2, 24, 14, 14]
    with pytest.raises(ExportError, match="fixes a dim at 24"):
        attncc.to_onnx(m, static_shapes={"x": (2, 25, 9, 11)})
