"""canonicalize alone: exactly the aligns broadcasting by name needs, and the right numbers."""

from __future__ import annotations

import numpy as np
import pytest

from attncc.passes.canonicalize import canonicalize

# (spec, aligns inserted, the block's output computed by hand from its inputs)
CASES = [
    pytest.param("block B(x: [N, C, H, W], s: [N, C]) { return x * s }", 1,
                 lambda x, s: x * s[:, :, None, None], id="se-gate"),
    pytest.param("block B(x: [N, C, H, W], s: [N, C]) { return s * x }", 1,
                 lambda x, s: s[:, :, None, None] * x, id="se-gate-operands-swapped"),
    pytest.param("block B(x: [N, C, H, W], m: [N, H, W]) { return x * m }", 1,
                 lambda x, m: x * m[:, None], id="spatial-gate"),
    pytest.param("block B(a: [N, C], b: [C, N]) { return a - b }", 1,
                 lambda a, b: a - b.T, id="permuted-operand"),
    pytest.param("block B(x: [N, C, H, W], s: [N, C], m: [N, H, W]) { return x * s + m }", 2,
                 lambda x, s, m: x * s[:, :, None, None] + m[:, None], id="two-broadcasts"),
    # a number is rank 0: it broadcasts as it is, with no align
    pytest.param("block B(x: [N, C, H, W]) { return x * 0.5 }", 0,
                 lambda x: x * np.float32(0.5), id="scalar"),
    pytest.param("block B(a: [N, H, W], b: [N, W, H]) { return stack(a, b, as=S) }", 1,
                 lambda a, b: np.stack([a, b.transpose(0, 2, 1)], axis=1), id="stack-permuted"),
    pytest.param("block B(x: [N, C, H, W], z: [N, C, H, W]) { return x * z }", 0,
                 lambda x, z: x * z, id="equal-layouts"),
    pytest.param("block B(x: [N, C, H, W]) { return sigmoid(mean(x, over=H W)) }", 0,
                 lambda x: 1 / (1 + np.exp(-x.mean(axis=(2, 3)))), id="no-binary-op"),
]


@pytest.mark.parametrize(("text", "aligns", "by_hand"), CASES)
def test_canonicalize(spec_ir, ref, nodes, text, aligns, by_hand):
    ir = spec_ir(text, until="dce")
    n_before = nodes(ir)
    assert nodes(ir, "align") == 0
    modified = canonicalize(ir)
    assert modified == (aligns > 0)
    assert nodes(ir) - n_before == aligns
    assert nodes(ir, "align") == aligns
    ir.lint()
    inputs = ref.inputs(ir)
    expected = by_hand(*inputs.values())
    (name, _), = ir.outputs
    np.testing.assert_allclose(ref(ir)[name], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("text", "aligns", "by_hand"), CASES)
def test_canonicalize_is_idempotent(spec_ir, nodes, text, aligns, by_hand):
    ir = spec_ir(text, until="dce")
    canonicalize(ir)
    n = nodes(ir)
    assert canonicalize(ir) is False
    assert nodes(ir) == n


def test_equal_layouts_keep_their_numbers(spec_ir, ref, same_outputs):
    ir = spec_ir(CASES[-2].values[0], until="dce")
    before = ref(ir)
    assert canonicalize(ir) is False
    same_outputs(before, ref(ir))


def test_align_in_the_dump(spec_ir):
    ir = spec_ir("""block SE(x: [N, C, H, W], s: [N, C]) {
  gate y = x * s
  return y
}""", until="dce")
    canonicalize(ir)
    lines = ir.dump().splitlines()
    assert lines[3:5] == [
        "%y.align1 : [N, C, H=1, W=1] = align(%s, to=[N, C, H, W]) @ <string>:2:12 [gate]",
        "%y : [N, C, H, W] = mul(%x, %y.align1) @ <string>:2:12 [gate]",
    ]
