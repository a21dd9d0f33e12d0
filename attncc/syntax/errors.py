"""Lark's syntax errors -> diagnostics with readable terminal names and targeted hints."""

from __future__ import annotations

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from attncc.diagnostics import Diagnostic, ParseError, Span

# what a user calls each terminal; anonymous tokens get their literal text
_DISPLAY = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "SEMICOLON": "`;`",
    "EQUAL": "`=`",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "STAR": "`*`",
    "SLASH": "`/`",
    "PERCENT": "`%`",
    "__ANON_0": "`->`",
    "$END": "end of file",
}


def _display(terminal: str) -> str:
    from attncc.syntax.grammar import parser

    if terminal in _DISPLAY:
        return _DISPLAY[terminal]
    try:
        pattern = parser().get_terminal(terminal).pattern
    except KeyError:
        return terminal
    if pattern.type == "str":
        return f"`{pattern.value}`"
    return terminal.lower()


_CLOSERS = ("RPAR", "RSQB", "RBRACE")


def _expected(names: set[str]) -> str:
    shown = sorted({_display(n) for n in names})
    if len(shown) > 8:
        # a long list helps nobody; an unclosed bracket is the likely mistake
        shown = sorted(_display(n) for n in _CLOSERS if n in names)
        if not shown:
            return ""
    if len(shown) == 1:
        return f"; expected {shown[0]}"
    return f"; expected one of {', '.join(shown[:-1])} or {shown[-1]}"


# known mistakes, recognised by lark's match_examples: (message hint, example snippets)
_EXAMPLES: dict[str, list[str]] = {
    "list dims side by side, without commas: `over=H W`": [
        "block B(x: [N, C]) { y = mean(x, over=H, W) }",
        "block B(x: [N, C]) { y = mean(x, over=(H, W)) }",
    ],
    "a dim map is written `In -> Out`, e.g. `dense(z, C -> C // r)`": [
        "block B(x: [N, C]) { y = dense(x, C C // r) }",
        "block B(x: [N, C]) { y = dense(x, C => C) }",
    ],
    "a block's parameters are `name: [dims]` or `name: type = default`": [
        "block B(x [N, C]) { }",
        "block B(x: [N C]) { }",
    ],
    "a statement assigns a name: `stage name = expression`": [
        "block B(x: [N, C]) { mean(x, over=C) }",
    ],
}


def _hints(err: UnexpectedInput, text: str) -> tuple[str, ...]:
    from attncc.syntax.grammar import parser

    try:
        label = err.match_examples(parser().parse, _EXAMPLES, use_accepts=True)
    except Exception:  # noqa: BLE001 - a failed match just means no targeted hint
        label = None
    return (label,) if label else ()


def syntax_diagnostic(err: UnexpectedInput, text: str, path: str) -> ParseError:
    """Turn a lark exception into a ParseError pointing at the offending character or token."""
    line = getattr(err, "line", 1) or 1
    col = getattr(err, "column", 1) or 1
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            message = "unexpected end of file" + _expected(err.accepts or err.expected)
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
            span = Span(path, line, col, line, col + 1)
        else:
            message = f"unexpected `{tok}`" + _expected(err.accepts or err.expected)
            span = Span(path, tok.line, tok.column, tok.end_line or tok.line,
                        tok.end_column or tok.column + len(str(tok)))
    elif isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else "?"
        message = f"unexpected character `{char}`"
        span = Span(path, line, col, line, col + 1)
    elif isinstance(err, UnexpectedEOF):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        message = "unexpected end of file" + _expected(set(err.expected))
        span = Span(path, line, col, line, col + 1)
    else:  # pragma: no cover - lark has no other UnexpectedInput subclasses
        message, span = "invalid syntax", Span(path, line, col, line, col + 1)
    return ParseError(Diagnostic(message, span, _hints(err, text)))
