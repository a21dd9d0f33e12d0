"""Lark's syntax errors -> diagnostics with readable terminal names and targeted hints."""

from __future__ import annotations

import functools

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
    "$END": "end of file",
}
# anonymous terminals (`->`, `//`, `**`) are named __ANON_n in an order lark chooses; they are
# shown through their pattern in _display, never by a fixed entry here


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


# terminal sets that read better as one word: whatever can start an expression or a statement
_GROUPS = (
    ("an expression", frozenset({"LPAR", "MINUS", "NAME", "INT", "FLOAT", "STRING", "TRUE",
                                 "FALSE"})),
    ("a statement", frozenset({"NAME", "ATTENTION", "DIM", "LAYER", "RETURN"})),
)


def _expected(names: set[str]) -> str:
    rest, labels = set(names), []
    for label, group in _GROUPS:
        if group <= rest:
            rest -= group
            labels.append(label)
    shown = sorted({_display(n) for n in rest} | set(labels))
    if len(shown) > 8:
        # a long list helps nobody; an unclosed bracket is the likely mistake
        shown = sorted(_display(n) for n in _CLOSERS if n in names)
        if not shown:
            return ""
    if len(shown) == 1:
        return f"; expected {shown[0]}"
    return f"; expected one of {', '.join(shown[:-1])} or {shown[-1]}"


# known mistakes: (hint, example snippets). An error gets the hint when lark reports it in the
# same parser state (the LALR state, whatever the nesting depth), with the same accepted
# terminals and the same unexpected token type as one of the examples.
_EXAMPLES: dict[str, list[str]] = {
    "list dims side by side, without commas: `over=H W`": [
        "block B(x: [N, C]) { y = mean(x, over=(H, W)) }",
    ],
    # (`C => C` is recognised by its characters in _char_hint: as an example it would claim
    # every error after `name=`)
    "a dim map is written `In -> Out`, e.g. `dense(z, C -> C // r)`": [
        "block B(x: [N, C]) { y = dense(x, C C // r) }",
        "block B(x: [N, C]) { y = dense(x, C C * r) }",
        "block B(x: [N, C]) { y = dense(x, C C + r) }",
        "block B(x: [N, C]) { y = dense(x, C C - r) }",
        "block B(x: [N, C]) { y = dense(x, C 2 * C) }",
    ],
    "a block's parameters are `name: [dims]` or `name: type = default`": [
        "block B(x [N, C]) { }",
        "block B(x int) { }",
    ],
    "separate the dims of a type with commas: `x: [N, C, H, W]`": [
        "block B(x: [N C]) { }",
    ],
    "a statement assigns a name: `stage name = expression`": [
        "block B(x: [N, C]) { mean(x, over=C) }",
        "block B(x: [N, C]) { squeeze mean(x, over=C) }",
    ],
}


def _position(err: UnexpectedInput) -> int | None:
    """The LALR state the parser was in; lark's own `state` also compares the stack depth."""
    state = getattr(err, "state", None)
    return getattr(state, "position", None)


def _terminals(err: UnexpectedInput) -> frozenset[str]:
    return frozenset(getattr(err, "accepts", None) or getattr(err, "expected", None) or ())


@functools.cache
def _example_errors() -> tuple[tuple[str, int | None, frozenset[str], str | None], ...]:
    from attncc.syntax.grammar import parser

    out = []
    for label, examples in _EXAMPLES.items():
        for example in examples:
            try:
                parser().parse(example)
            except UnexpectedInput as ut:
                tok = getattr(ut, "token", None)
                out.append((label, _position(ut), _terminals(ut), getattr(tok, "type", None)))
            # an example that parses teaches nothing; tests/test_grammar.py guards against it
    return tuple(out)


def _hints(err: UnexpectedInput, text: str) -> tuple[str, ...]:
    position = _position(err)
    if position is None:
        return ()
    tok = getattr(err, "token", None)
    key = (position, _terminals(err), getattr(tok, "type", None))
    for label, *example in _example_errors():
        if tuple(example) == key:
            return (label,)
    return ()


_CLOSER = {"(": ("RPAR", ")"), "[": ("RSQB", "]"), "{": ("RBRACE", "}")}


def _unclosed(text: str, upto: int) -> tuple[str, int, int] | None:
    """The innermost bracket still open at offset `upto`: (bracket, line, column), 1-based.

    Comments and strings are skipped, as the lexer skips them.
    """
    stack: list[tuple[str, int, int]] = []
    line, col, i = 1, 1, 0
    in_comment = in_string = False
    while i < min(upto, len(text)):
        ch = text[i]
        if ch == "\n":
            in_comment = in_string = False
            line, col, i = line + 1, 1, i + 1
            continue
        if in_comment:
            pass
        elif in_string:
            in_string = ch != '"'
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in _CLOSER:
            stack.append((ch, line, col))
        elif ch in ")]}" and stack and _CLOSER[stack[-1][0]][1] == ch:
            stack.pop()
        col, i = col + 1, i + 1
    return stack[-1] if stack else None


# tokens that end what a bracket holds: meeting one while a bracket is open means it was not closed
_ENDERS = {"SEMICOLON", "RPAR", "RSQB", "RBRACE", "$END"}


def _unclosed_help(text: str, upto: int, expected: set[str], path: str, tok_type: str,
                   tok_line: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A hint and a note when the likely mistake is a bracket left open.

    That is the case when the bracket's closer would be accepted here and the parser met a
    token that ends a statement or a bracket, or a token on a later line than the bracket.
    """
    found = _unclosed(text, upto)
    if found is None:
        return (), ()
    bracket, line, col = found
    terminal, closer = _CLOSER[bracket]
    if terminal not in expected or (tok_type not in _ENDERS and tok_line <= line):
        return (), ()
    return ((f"close the `{bracket}` opened on line {line} with `{closer}`",),
            (f"the unclosed `{bracket}` is here: {path}:{line}:{col}",))


def _char_hint(text: str, pos: int, char: str) -> tuple[str, ...]:
    if char == ">" and pos > 0 and text[pos - 1] == "=":
        return ("a dim map is written `In -> Out`, e.g. `dense(z, C -> C // r)`",)
    if char == "=" and pos > 0 and text[pos - 1] in "=!<>":
        return ("there are no comparisons; `=` only binds a name or a keyword argument",)
    return (_CHAR_HINTS[char],) if char in _CHAR_HINTS else ()


# characters that are not part of the language, with what the user probably meant
_CHAR_HINTS = {
    '"': "a string ends on the line where it starts, with `\"`",
    ".": "there is no attribute access: refer to values and dims by name, e.g. `C`",
    "@": "`*` multiplies elementwise; contractions are ops with named dims",
    "'": 'strings use double quotes: `"..."`',
    "\ufeff": "the file starts with a byte-order mark; save it as UTF-8 without one",
}


def syntax_diagnostic(err: UnexpectedInput, text: str, path: str) -> ParseError:
    """Turn a lark exception into a ParseError pointing at the offending character or token."""
    line = getattr(err, "line", 1) or 1
    col = getattr(err, "column", 1) or 1
    hints, notes = _hints(err, text), ()
    if isinstance(err, UnexpectedToken):
        tok = err.token
        expected = set(err.accepts or err.expected)
        if tok.type == "$END":
            message = "unexpected end of file" + _expected(expected)
            span = _end_span(text, path)
            upto = len(text)
        else:
            message = f"unexpected `{tok}`" + _expected(expected)
            span = Span(path, tok.line, tok.column, tok.end_line or tok.line,
                        tok.end_column or tok.column + len(str(tok)))
            upto = tok.start_pos if tok.start_pos is not None else len(text)
            if not hints and str(tok) == "->":
                hints = ("`->` maps dims and appears only in an op's arguments, "
                         "e.g. `dense(z, C -> D)`",)
            elif not hints and str(tok) == "=" and upto > 0:
                hints = _char_hint(text, upto, "=")
        if not hints:
            hints, notes = _unclosed_help(text, upto, expected, path, tok.type, span.line)
    elif isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else "?"
        shown = f"`{char}`" if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
        message = f"unexpected character {shown}"
        span = Span(path, line, col, line, col + 1)
        if not hints:
            hints = _char_hint(text, err.pos_in_stream, char)
    elif isinstance(err, UnexpectedEOF):
        expected = set(err.expected)
        message = "unexpected end of file" + _expected(expected)
        span = _end_span(text, path)
        if not hints:
            hints, notes = _unclosed_help(text, len(text), expected, path, "$END", span.line)
    else:  # pragma: no cover - lark has no other UnexpectedInput subclasses
        message, span = "invalid syntax", Span(path, line, col, line, col + 1)
    return ParseError(Diagnostic(message, span, hints, notes))


def _end_span(text: str, path: str) -> Span:
    """Just past the last character of the last line: where the missing text would go."""
    # lines end at "\n" only, as lark counts them; a final newline opens no new line
    lines = text.split("\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()
    line, col = len(lines), len(lines[-1].rstrip("\r")) + 1
    return Span(path, line, col, line, col + 1)
