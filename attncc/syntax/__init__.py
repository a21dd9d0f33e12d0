"""The front end: `.attn` text -> AST with source spans."""

from __future__ import annotations

import functools

from lark import Tree
from lark.exceptions import UnexpectedInput, VisitError

from attncc.diagnostics import AttnccError, Diagnostic, InternalError, ParseError, Span
from attncc.syntax import ast
from attncc.syntax.errors import syntax_diagnostic
from attncc.syntax.grammar import parser
from attncc.syntax.to_ast import to_ast

__all__ = ["ast", "parse"]


def parse(text: str, path: str = "<string>") -> ast.Module:
    """Parse `.attn` source into an AST; raises ParseError with a span on bad syntax.

    The AST is immutable, so a text parsed again (the driver reads a spec's examples, presets
    and blocks in separate steps) comes from a small cache.
    """
    from attncc.limits import current

    return _parse(text, path, current().nesting)


@functools.lru_cache(maxsize=32)
def _parse(text: str, path: str, nesting: int) -> ast.Module:
    try:
        tree = parser().parse(text)
    except UnexpectedInput as err:
        raise syntax_diagnostic(err, text, path).with_sources({path: text}) from None
    _check_nesting(tree, path, text, nesting)
    try:
        return to_ast(tree, path, text)
    except VisitError as err:
        # our own diagnostics raised inside a callback arrive wrapped: unwrap them deliberately
        if isinstance(err.orig_exc, AttnccError):
            raise err.orig_exc.with_sources({path: text}) from None
        raise InternalError(f"building the syntax tree failed: {err.orig_exc!r}") from err


def _check_nesting(tree: Tree, path: str, text: str, limit: int) -> None:
    """Refuse syntax nested deeper than the `nesting` limit before anything recurses over it.

    The syntax tree is built, checked and elaborated by recursive functions; a pathological
    `((((...))))` or `1 + 1 + ... + 1` of thousands of levels would exhaust Python's stack.
    """
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            meta = node.meta if isinstance(node, Tree) else None
            line, col = (getattr(meta, "line", 1), getattr(meta, "column", 1)) if meta else (1, 1)
            raise ParseError(Diagnostic(
                f"the syntax is nested more than {limit} levels deep here", Span(
                    path, line, col, line, col + 1),
                hints=("split the expression into named steps",
                       f"or raise the limit: `--limit nesting={limit * 2}`"),
            )).with_sources({path: text})
        if isinstance(node, Tree):
            stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
