"""`gather` through compile-time index tables and the run-time-sized `eye` diagonal."""

from __future__ import annotations

import _harness as h
import numpy as np
import pytest
import torch

import attncc
from attncc.api import to_onnx
from attncc.diagnostics import AttnccError

MASKED = """
block B(x: [N, C, H, W]) {
  e = contract(x, x as [N, C, Hk, W], over=C)                  # [N, H, W, Hk]
  a = softmax(e + eye(e, over=H Hk, fill="-inf"), over=Hk)     # the diagonal removed
  return a, eye(e, over=Hk H)
}
"""


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 3, 2, 7)], ids=["n2_h5_w4", "n1_h2_w7"])
def test_eye_is_sized_at_run_time(shape):
    m = attncc.compile(MASKED, C=3)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = h.assert_backends_agree(m, {"x": x}, label=f"eye at {shape}")
    for results in out.values():
        a, eye = results.values()
        assert np.isfinite(a).all()
        assert (np.diagonal(a, axis1=1, axis2=3) == 0).all()
        np.testing.assert_array_equal(eye, np.eye(shape[2], dtype=np.float32))


def test_eye_lowers_without_diag_or_zero_times_inf():
    ops = {n.op_type for n in to_onnx(attncc.compile(MASKED, C=3)).graph.node}
    assert {"EyeLike", "Where"} <= ops
    assert "Mul" not in ops


def test_gather_tables_are_int64_buffers():
    text = ("block B(x: [N, C, H, W]) {\n"
            "  q = merge(contract(x, x as [N, D, H, W], over=H W), C D -> Q)\n"
            "  return gather(q, along=Q, table=\"triu\", as=U)\n}\n")
    m = attncc.compile(text, C=4)
    (name, index), = [(k, v) for k, v in m.state_dict().items()]
    assert index.dtype == torch.int64 and name.endswith(".index")
    assert index.tolist() == [0, 5, 10, 15, 4, 9, 14, 8, 13, 12]
    assert not list(m.parameters())
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 5)).astype(np.float32)
    h.assert_backends_agree(m, {"x": x}, label="gather-triu")


@pytest.mark.parametrize(
    ("stmt", "message"),
    [
        pytest.param('y = gather(merge(x, C H -> Q), along=Q, table="triu", as=U)',
                     "has size 20, not a square", id="triu-not-square"),
        pytest.param('y = gather(x, along=Q, table="triu", as=U)',
                     "gather indexes `Q` but its input has dims", id="missing-dim"),
        pytest.param('y = gather(x, along=C, table="triu", as=U V)',
                     "the `triu` table has 1 dims, but `as` names 2", id="rank"),
        pytest.param('y = gather(x, along=C, table="triu", as=H)',
                     "gather would give two dims named `H`", id="clash"),
        pytest.param('y = gather(x, along=C, table="diag", as=U)', 'is one of "triu"',
                     id="unknown-table"),
        pytest.param('y = gather(merge(x, C H W -> F), along=F, table="psa_collect", '
                     "as=J H W)", "but the dim has size 80", id="psa-size"),
        pytest.param("y = eye(x, over=H)", "eye spans two different dims", id="eye-one-dim"),
        pytest.param("y = eye(x, over=H Hk)", "eye takes the size of `Hk`", id="eye-missing"),
        pytest.param('y = eye(x, over=H W, fill="zero")', 'is one of "one" or "-inf"',
                     id="eye-fill"),
    ],
)
def test_errors_point_at_the_call(stmt, message):
    text = f"block B(x: [N, C, H, W]) {{\n  {stmt}\n  return y\n}}\n"
    with pytest.raises(AttnccError) as err:
        attncc.check(text, C=4, H=5, W=4)
    assert message in str(err.value)
    assert "<string>:2:" in str(err.value)


def test_psa_table_needs_static_map_size():
    text = ('block B(x: [N, C, H, W]) {\n  y = gather(merge(x, C H W -> F), along=F, '
            'table="psa_collect", as=J H W)\n  return y\n}\n')
    with pytest.raises(AttnccError, match="needs the size of `F`"):
        attncc.check(text, C=4)
