"""Loads `attn.lark` once: from the installed package, or from the source checkout's grammar/."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from lark import Lark

_REPO_GRAMMAR = Path(__file__).resolve().parents[2] / "grammar" / "attn.lark"


def grammar_text() -> str:
    """The grammar source: the wheel ships it as attncc/_grammar/attn.lark."""
    packaged = resources.files("attncc").joinpath("_grammar/attn.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return _REPO_GRAMMAR.read_text(encoding="utf-8")


@functools.cache
def parser() -> Lark:
    # lalr keeps parsing linear and gives UnexpectedToken with the accepted terminals;
    # the contextual lexer lets keywords like `over` still be used as keyword-argument names
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )
