"""`param` declarations: learnable tensors over named dims, their initialisers and errors."""

from __future__ import annotations

import pytest
import torch
from _harness import assert_backends_agree, randomize_

import attncc
from attncc.diagnostics import AttnccError

GATE = """
block Gate(x: [N, C, H, W]) {
  param alpha: [C] = ones
  param gamma: [C] = zeros
  param beta: [C] = constant(0.5)
  param w: [C, H] = normal(0.02)
  param u: [C] = uniform(-0.25, 0.75)
  squeeze  e = alpha * mean(x * x, over=H W) + 1e-5
  gate     y = x * (1 + tanh(gamma * e + beta)) + mean(w, over=C H) * mean(u, over=C)
  attention e
  return y
}
"""

SIZES = {"C": 6, "H": 5}


def test_parameters_are_named_and_initialised():
    torch.manual_seed(0)
    m = attncc.compile(GATE, **SIZES)
    sd = m.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "alpha": (6,), "gamma": (6,), "beta": (6,), "w": (6, 5), "u": (6,)}
    assert torch.equal(sd["alpha"], torch.ones(6))
    assert torch.equal(sd["gamma"], torch.zeros(6))
    assert torch.equal(sd["beta"], torch.full((6,), 0.5))
    assert 0.005 < float(sd["w"].std()) < 0.05
    assert float(sd["u"].min()) >= -0.25 and float(sd["u"].max()) <= 0.75
    assert sorted(n for n, _ in m.named_parameters()) == sorted(sd)


@pytest.mark.parametrize("shape", [(2, 6, 5, 7), (1, 6, 5, 3)], ids=["n2", "n1"])
def test_backends_agree_on_declared_parameters(shape):
    m = attncc.compile(GATE, **SIZES).eval()
    randomize_(m, seed=3)
    x = torch.randn(shape).numpy()
    assert_backends_agree(m, {"x": x}, label="param-gate")


def test_declared_parameters_receive_gradients():
    m = attncc.compile(GATE, **SIZES)
    randomize_(m, seed=1)
    m(torch.randn(2, 6, 5, 7)).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        pytest.param("param a: [C] = xavier", "unknown initialiser `xavier`", id="unknown-init"),
        pytest.param("param a: [D] = ones", "unknown dim `D`", id="unknown-dim"),
        pytest.param("param a: [W] = ones", "needs the size of `W`", id="runtime-dim"),
        pytest.param("param a: [C] = normal", "`normal` takes 1 argument", id="init-arity"),
        pytest.param("param a: [C, C] = ones", "dim `C` appears twice", id="dim-twice"),
    ],
)
def test_declaration_errors(decl, message):
    text = f"block B(x: [N, C, H, W]) {{\n  {decl}\n  y = x * mean(a, over=C)\n  return y\n}}\n"
    with pytest.raises(AttnccError) as err:
        attncc.check(text, C=4)
    rendered = str(err.value)
    assert message in rendered
    assert "<string>:2:" in rendered
