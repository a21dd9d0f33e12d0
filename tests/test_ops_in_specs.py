"""The numeric ops called from a spec: scalar operands, run-time sizes, BN's init_weight."""

from __future__ import annotations

import _harness as h
import pytest

import attncc

SPEC = """block T(x: [N, C, H, W]) {
  a = maximum(x, 0) + minimum(0.5, x)
  v = var(x, over=H W, correction=1) + std(x, over=H W, correction=0) + l2(x, over=H W)
  s = softmax(a, over=H W) * softmax(x, over=C) + logsumexp(x, over=H W)
  n = layer_norm(s, over=C) + layer_norm(x, over=H W, affine=false) + group_norm(x, 2, channel=C)
  b = batch_norm(n, over=N H W, init_weight=0)
  y = b * v + hard_swish(gelu(silu(softplus(x)))) + hard_sigmoid(relu6(abs(x))) + log(exp(x))
  return y
}"""


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "t.attn"
    path.write_text(SPEC, encoding="utf-8")
    return attncc.compile(path, seed=0, C=6)


def test_batch_norm_init_weight(module):
    assert float(module.state_dict()["b.weight"].abs().sum()) == 0.0


@pytest.mark.parametrize("sizes", [{"N": 2, "H": 5, "W": 7}, {"N": 3, "H": 4, "W": 9}])
def test_backends_agree_at_run_time_sizes(module, sizes):
    # one exported graph, two spatial sizes: var's divisor and softmax must not freeze H*W
    h.randomize_(module, 0)
    inputs = h.make_inputs(module.ir, sizes, seed=1)
    h.assert_backends_agree(module, inputs, label=f"ops-in-spec-{sizes}", atol=1e-4)
