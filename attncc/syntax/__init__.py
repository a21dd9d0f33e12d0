"""The front end: `.attn` text -> AST with source spans."""

from __future__ import annotations

from lark.exceptions import UnexpectedInput, VisitError

from attncc.diagnostics import AttnccError, InternalError
from attncc.syntax import ast
from attncc.syntax.errors import syntax_diagnostic
from attncc.syntax.grammar import parser
from attncc.syntax.to_ast import to_ast

__all__ = ["ast", "parse"]


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse `.attn` source into an AST; raises ParseError with a span on bad syntax."""
    try:
        tree = parser().parse(text)
    except UnexpectedInput as err:
        raise syntax_diagnostic(err, text, path).with_sources({path: text}) from None
    try:
        return to_ast(tree, path, text)
    except VisitError as err:
        # our own diagnostics raised inside a callback arrive wrapped: unwrap them deliberately
        if isinstance(err.orig_exc, AttnccError):
            raise err.orig_exc.with_sources({path: text}) from None
        raise InternalError(f"building the syntax tree failed: {err.orig_exc!r}") from err
