"""`repeat n { ... }`: compile-time loops, unrolled with shared layers and loop-carried names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _harness import assert_backends_agree, make_inputs, randomize_

import attncc
from attncc.diagnostics import AttnccError
from attncc.elaborate import MAX_REPEAT, elaborate
from attncc.syntax import ast, parse

LOOP = """
block Loop(x: [N, C, H, W], s: int = 3) {
  layer f = conv(C -> C, over=H W, k=1)
  param g: [C] = ones
  h = x
  excite repeat s {
    z = f(h) * g                 # reads the previous iteration's h
    h = tanh(z) + h              # loop-carried: rebinds the outer h
  }
  y = h + z                      # after the loop: the last iteration's values
  attention z
  return y
}
"""


def _names(ir) -> list[str]:
    return [ir.node(n).name for n in ir.graph.nodes]


def _error(text: str, **hyper) -> AttnccError:
    with pytest.raises(AttnccError) as info:
        elaborate(text, hyper_values={"C": 4, **hyper})
    return info.value


def _diag(text: str, **hyper):
    return _error(text, **hyper).diagnostics[0]


# ---- parsing ----
def test_parses_to_a_repeat_node_with_spans():
    (block,) = parse(LOOP).blocks
    loop = block.body[3]
    assert isinstance(loop, ast.Repeat)
    assert loop.stage.text == "excite"
    assert loop.count == ast.Var("s", loop.count.span)
    assert [type(s) for s in loop.body] == [ast.Assign, ast.Assign]
    assert (loop.keyword.line, loop.keyword.col, loop.keyword.end_col) == (6, 10, 16)
    assert (loop.span.line, loop.span.end_line) == (6, 9)


def test_count_is_an_expression_and_bodies_nest():
    (block,) = parse("block B(x: [N]) { repeat 2 * k + 1 { repeat k { y = x }; ; } return x }"
                     ).blocks
    outer = block.body[0]
    assert ast.unparse(outer.count) == "2*k+1"
    assert isinstance(outer.body[0], ast.Repeat) and len(outer.body) == 1


def test_repeat_is_still_a_keyword_argument_name():
    (block,) = parse("block B(x: [N]) { y = f(x, repeat=2) return y }").blocks
    assert block.body[0].value.kwargs[0].name.text == "repeat"


# ---- unrolling ----
@pytest.mark.parametrize("s", [1, 2, 5])
def test_unrolls_the_body_count_times_with_indexed_names(s):
    m = attncc.compile(LOOP, C=4, s=s)
    names = _names(m.ir)
    assert [n for n in names if n.startswith("h.") and n.count(".") == 1] == \
        [f"h.{i}" for i in range(1, s + 1)]
    assert [n for n in names if n.startswith("z.") and n.count(".") == 1] == \
        [f"z.{i}" for i in range(1, s + 1)]
    assert sum(m.ir.node(n).op == "conv" for n in m.ir.graph.nodes) == s
    # the statement's other nodes carry the index too
    assert f"h.{s}.tanh" in names
    # after the loop, `z` is the last iteration's
    assert m.ir.attention["z"] == next(n for n in m.ir.graph.nodes
                                       if m.ir.node(n).name == f"z.{s}")


def test_layers_and_params_are_shared_across_iterations():
    m = attncc.compile(LOOP, C=4, s=3)
    assert sorted(m.state_dict()) == ["f.bias", "f.weight", "g"]
    ir = m.ir
    convs = [n for n in ir.graph.nodes if ir.node(n).op == "conv"]
    weights = {tuple(ir.inputs_of(n)[1:]) for n in convs}
    assert len(convs) == 3 and len(weights) == 1


def test_matches_a_python_loop():
    m = randomize_(attncc.compile(LOOP, C=4, s=3), 1).eval()
    x = torch.randn(2, 4, 3, 5)
    sd = m.state_dict()
    h = x
    for _ in range(3):
        z = torch.nn.functional.conv2d(h, sd["f.weight"], sd["f.bias"]) * sd["g"][:, None, None]
        h = torch.tanh(z) + h
    with torch.no_grad():
        torch.testing.assert_close(m(x), h + z)


@pytest.mark.parametrize("s", [1, 3])
def test_backends_agree(s):
    m = randomize_(attncc.compile(LOOP, C=4, s=s), 2)
    assert_backends_agree(m, make_inputs(m.ir, {"N": 2, "H": 3, "W": 5}, seed=3),
                          label=f"repeat s={s}")


NESTED = """
block Nested(x: [N, C], a: int = 2, b: int = 3) {
  layer f = dense(C -> C)
  h = x
  repeat a {
    g = h
    repeat b { g = f(g) }
    h = relu(g) + h
  }
  return h
}
"""


def test_nested_loops_name_nodes_by_both_indices():
    m = randomize_(attncc.compile(NESTED, C=5), 4)
    names = _names(m.ir)
    assert [n for n in names if n.startswith("g.")] == \
        [f"g.{i}.{j}" for i in (1, 2) for j in (1, 2, 3)]
    assert sorted(m.state_dict()) == ["f.bias", "f.weight"]
    assert_backends_agree(m, make_inputs(m.ir, {"N": 3}, seed=5), label="nested repeat")


def test_zero_iterations_keep_the_carried_values():
    text = "block B(x: [N, C], s: int = 0) { h = x\n repeat s { h = relu(h) + 1 }\n return h }"
    m = attncc.compile(text, C=4)
    x = torch.randn(2, 4)
    torch.testing.assert_close(m(x), x)


def test_stop_gradient_inside_a_loop():
    text = """
block B(x: [N, C], s: int = 2) {
  layer f = dense(C -> C)
  h = x
  repeat s { h = f(stop_gradient(h)) }
  return h
}"""
    m = randomize_(attncc.compile(text, C=4), 6)
    x = torch.randn(2, 4, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is None  # cut at the first iteration
    assert m.state_dict()["f.weight"].shape == (4, 4)
    assert all(p.grad is not None for p in m.parameters())
    assert ".detach()" in m.source
    assert_backends_agree(m, {"x": np.ones((2, 4), np.float32)}, label="stop_gradient")


# ---- errors ----
def test_count_out_of_range():
    d = _diag(LOOP, s=-1)
    assert "at least 0, got -1" in d.message and d.span.line == 6
    assert "`s` is defined at" in " ".join(d.notes)
    d = _diag(LOOP, s=MAX_REPEAT + 1)
    assert f"at most {MAX_REPEAT}, got {MAX_REPEAT + 1}" in d.message
    with pytest.raises(AttnccError, match="at most 2, got 3"):
        elaborate(LOOP, hyper_values={"C": 4}, max_repeat=2)


@pytest.mark.parametrize(("count", "got"), [("1.5", "float 1.5"), ("true", "bool true")])
def test_count_must_be_an_integer(count, got):
    d = _diag(f"block B(x: [N, C]) {{ repeat {count} {{ y = x }} return x }}")
    assert d.message == f"the count of `repeat` must be an integer, got {got}"
    assert d.span.col == 29


@pytest.mark.parametrize("decl", ["layer f = relu", "param p: [C] = ones", "dim D = 2",
                                  "attention h", "return h"])
def test_declarations_belong_before_the_loop(decl):
    d = _diag(f"block B(x: [N, C]) {{ h = x\n repeat 2 {{\n {decl}\n }}\n return h }}")
    kw = decl.split()[0]
    assert d.message == f"`{kw}` cannot be inside `repeat`"
    assert d.span.line == 3


def test_a_name_is_assigned_once_per_iteration():
    d = _diag("block B(x: [N, C]) { h = x\n repeat 2 {\n h = relu(h)\n h = h + 1\n }\n return h }")
    assert d.message == "`h` is assigned twice in one iteration of `repeat`"
    assert d.span.line == 4 and "first assigned at <string>:3:2" in d.notes


def test_outside_a_loop_a_name_is_still_defined_once():
    d = _diag("block B(x: [N, C]) { h = x\n repeat 2 { h = relu(h) }\n h = h + 1\n return h }")
    assert d.message == "`h` is already defined" and d.span.line == 3


def test_a_body_name_starts_each_iteration_unset():
    d = _diag("block B(x: [N, C]) { h = x\n repeat 2 {\n y = z + h\n z = relu(h)\n }\n return h }")
    assert d.message == "`z` is used before the `repeat` body assigns it"
    assert d.span.line == 3 and any("iteration 1 of 2" in n for n in d.notes)


def test_a_body_name_after_zero_iterations():
    d = _diag("block B(x: [N, C], s: int = 0) { repeat s { z = relu(x) }\n return z }")
    assert d.message == "`z` is assigned only inside a `repeat` that runs 0 times"
    assert d.span.line == 2


def test_only_tensors_are_carried():
    d = _diag("block B(x: [N, C], s: int = 2) { repeat 2 { s = 3 }\n return x }")
    assert d.message.startswith("`s` is a number; `repeat` can only carry tensors")


def test_inline_parameters_inside_a_loop_are_refused():
    d = _diag("block B(x: [N, C]) { h = x\n repeat 2 { h = dense(h, C -> C) }\n return h }")
    assert "would make new parameters on every iteration" in d.message
    assert "declare a `layer`" in d.hints[0]
    assert any("iteration 1 of 2 of the `repeat` at <string>:2:2" in n for n in d.notes)


def test_a_failed_loop_does_not_cascade():
    err = _error("block B(x: [N, C]) { h = x\n repeat 2 { h = nope(h) }\n y = h + 1\n return y }")
    assert [d.message for d in err.diagnostics] == ["unknown op or block `nope`"]
