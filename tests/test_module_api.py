"""Compiled modules as a user meets them: repr, attention_maps, and dims from example inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attncc
from attncc.diagnostics import HyperparameterError


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- repr ----
def test_repr_lists_stages_ops_and_parameter_counts():
    m = attncc.load("cbam", C=48, r=4)
    text = repr(m)
    lines = text.splitlines()
    assert lines[0].startswith("CBAM(") and "specs/cbam.attn" in lines[0]
    assert "r=4" in text and "C=48" in text
    assert "inputs: x: [N, C, H, W]" in text
    stage = {ln.split()[0]: ln for ln in lines[1:] if ln.split()[0] in
             ("squeeze", "excite", "gate")}
    # channel MLP 48->12->48 with biases; 7x7 conv over 2 maps without bias, BN weight + bias
    assert f"{48 * 12 + 12 + 12 * 48 + 48:,} params" in stage["squeeze"]
    # the compiled graph: the batch pass runs the shared MLP once on both descriptors
    assert "dense ×2" in stage["squeeze"] and "stack" in stage["squeeze"]
    assert f"{2 * 7 * 7 + 2} params" in stage["excite"]
    assert "conv, batch_norm, sigmoid" in stage["excite"]
    assert "mul ×2" in stage["gate"] and "align" not in text  # plumbing is left out
    assert "attention: s_c [N, C], s_s [N, H, W]" in text
    total = sum(p.numel() for p in m.parameters())
    assert f"total: {total:,} parameters, 3 buffer values" in text


def test_repr_follows_the_live_parameters():
    m = attncc.load("se", C=32, r=4)
    assert "total: 552 parameters" in repr(m)
    m.fc1.weight = torch.nn.Parameter(torch.zeros(8, 32))  # same shape: same count
    assert "total: 552 parameters" in repr(m)


def test_repr_of_a_block_without_attention_or_hyperparameters():
    m = attncc.compile("block Id(x: [N, C, H, W]) { y = relu(x)\n return y }")
    text = repr(m)
    assert "hyperparameters: none; fixed dims: none" in text
    assert "attention" not in text and "total: 0 parameters" in text


# ---- attention_maps ----
def test_attention_maps_are_forwards_maps_by_name():
    m = attncc.load("cbam", C=24, r=4).eval()
    x = _x(2, 24, 5, 7)
    maps = m.attention_maps(x)
    assert list(maps) == ["s_c", "s_s"]
    _, want = m(x, return_attention=True)
    for k in want:
        torch.testing.assert_close(maps[k], want[k], rtol=0, atol=0)
    assert tuple(maps["s_s"].shape) == (2, 5, 7)


def test_attention_maps_with_two_inputs_by_keyword():
    m = attncc.load("ocr", C=16, key=8).eval()
    x, regions = _x(2, 16, 5, 6), _x(2, 3, 5, 6, seed=1)
    a = m.attention_maps(x, regions)
    b = m.attention_maps(regions=regions, x=x)
    assert set(a) == {"object_context_block.sim", "m"}
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_standalone_source_has_attention_maps(tmp_path):
    import importlib.util

    m = attncc.load("cbam", C=16, r=4).eval()
    path = tmp_path / "block.py"
    path.write_text(m.source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("block_standalone", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    plain = mod.CBAM()
    plain.load_state_dict(m.state_dict())
    plain.eval()
    x = _x(1, 16, 4, 5)
    torch.testing.assert_close(plain.attention_maps(x)["s_s"], m.attention_maps(x)["s_s"])


# ---- dims from example inputs ----
@pytest.mark.parametrize("example", [
    pytest.param(lambda x: x, id="tensor"),
    pytest.param(lambda x: (x,), id="tuple"),
    pytest.param(lambda x: {"x": x}, id="mapping"),
    pytest.param(lambda x: x.numpy(), id="numpy"),
])
def test_example_input_sets_channel_dim(example):
    x = _x(2, 40, 6, 9)
    m = attncc.compile("cbam", example=example(x), r=8)
    assert m.ir.dims["C"] == 40 and m.ir.dims["H"] is None and m.ir.dims["N"] is None
    assert m.mlp["0"].weight.shape == (5, 40)
    assert m(_x(3, 40, 11, 4)).shape == (3, 40, 11, 4)  # batch and spatial dims stay free


def test_load_takes_an_example_and_two_inputs_in_order():
    m = attncc.load("ocr", example=(_x(2, 12, 5, 6), _x(2, 3, 5, 6)), key=8)
    assert m.ir.dims["C"] == 12


def test_example_agrees_with_a_consistent_hyperparameter():
    assert attncc.load("se", C=20, r=4, example=_x(1, 20, 3, 3)).ir.dims["C"] == 20


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"C": 16, "example": np.zeros((2, 32, 9, 9))},
     "hyperparameter `C=16` contradicts the example: input `x` of shape [2, 32, 9, 9] has C=32"),
    ({"example": (np.zeros((2, 8, 3, 3)),) * 2}, "2 example inputs given, but `CBAM` takes 1"),
    ({"example": 3}, "an example input must be a tensor or array"),
    ({"example": {"y": np.zeros((2, 8, 3, 3))}}, "the block has no input `y`"),
    ({"example": np.zeros((3, 3))}, "input `x` has 4 dims [N, C, H, W]"),
    ({"example": np.zeros((2, 8, 3, 3)), "shapes": {"x": (2, 8, 3, 3)}},
     "give `shapes` or `example`, not both"),
])
def test_bad_examples_get_a_diagnostic(kwargs, message):
    with pytest.raises(HyperparameterError) as info:
        attncc.compile("cbam", **kwargs)
    assert message in info.value.render()
