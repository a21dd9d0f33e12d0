"""docs/language.md is generated from the grammar and the op registry, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

import attncc
from attncc import docs
from attncc.ops import all_ops
from attncc.syntax.grammar import grammar_text

LANGUAGE = Path(__file__).resolve().parents[1] / "docs" / "language.md"


def test_language_reference_is_current():
    assert LANGUAGE.read_text(encoding="utf-8") == docs.language_reference(), (
        "docs/language.md is out of date: run `make docs`")


def test_every_user_op_and_construct_is_documented():
    text = docs.language_reference()
    for name, op in all_ops().items():
        if "internal" not in op.traits:
            assert f"### `{name}`" in text
            assert f"`{docs.signature_line(op)}`" in text
    for rule in docs.grammar_rules(grammar_text()):
        assert f"### {docs.CONSTRUCTS[rule][0]}\n" in text


def test_an_undocumented_grammar_rule_is_an_error():
    grammar = grammar_text().replace("_stmt: assign", "_stmt: assign\n      | new_thing", 1)
    with pytest.raises(ValueError, match="new_thing"):
        docs.constructs(grammar)


def test_signature_and_example_of_an_op():
    dense = all_ops()["dense"]
    assert docs.signature_line(dense) == "dense(x, map, *, bias=true, zero_init=false)"
    sample = dense.samples()[0]
    text = docs.example(dense, sample)
    assert "y = dense(x, C -> D)" in text and "# y: [N, D]" in text


def test_the_block_example_compiles():
    source = docs.CONSTRUCTS["block"][2]
    assert attncc.check(source, C=32, r=4).parameter_count() == 32 * 8 + 8 + 8 * 32 + 32


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "sub" / "language.md"
    assert docs.main(["-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("# The attncc language reference")
