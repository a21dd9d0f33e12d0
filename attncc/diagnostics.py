"""Spans, diagnostics and the AttnccError family, rendered clang-style with a caret and hints."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Span:
    """A source range: 1-based line and column, end column one past the last character."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    def to(self, other: Span) -> Span:
        """The span from the start of `self` to the end of `other`."""
        return Span(self.path, self.line, self.col, other.end_line, other.end_col)


@dataclass(frozen=True)
class Diagnostic:
    """One message about the user's input. Messages are lowercase with no final period."""

    message: str
    span: Span | None = None
    hints: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    severity: str = "error"


class AttnccError(Exception):
    """Base of every error attncc raises for a user's mistake; carries diagnostics.

    `str(err)` is the rendered text (with source lines when the sources are known), so a
    notebook or a log shows the caret.
    """

    def __init__(
        self,
        message_or_diags: str | Diagnostic | Iterable[Diagnostic],
        span: Span | None = None,
        *,
        hints: Iterable[str] = (),
        notes: Iterable[str] = (),
    ) -> None:
        if isinstance(message_or_diags, str):
            diags: tuple[Diagnostic, ...] = (
                Diagnostic(message_or_diags, span, tuple(hints), tuple(notes)),
            )
        elif isinstance(message_or_diags, Diagnostic):
            diags = (message_or_diags,)
        else:
            diags = tuple(message_or_diags)
        self.diagnostics = diags
        self.sources: dict[str, str] = {}
        super().__init__(diags[0].message if diags else "")

    def with_sources(self, sources: Mapping[str, str]) -> AttnccError:
        """Attach source texts (path -> text) so rendering can quote the offending line."""
        self.sources.update(sources)
        return self

    def with_note(self, note: str) -> AttnccError:
        """Append a note to each diagnostic, e.g. the call through which an error was reached."""
        self.diagnostics = tuple(
            replace(d, notes=(*d.notes, note)) for d in self.diagnostics
        )
        return self

    def render(self, color: bool = False) -> str:
        return "\n".join(render(d, self.sources, color=color) for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()


class ParseError(AttnccError):
    """The text is not valid .attn syntax."""


class NameError_(AttnccError):  # noqa: N801 - trailing underscore avoids the builtin
    """An unknown op, block, name, keyword or dim."""


class ShapeError(AttnccError):
    """Tensors whose named dims do not fit the op."""


class HyperparameterError(AttnccError):
    """A hyperparameter of the wrong type, out of range, or missing."""


class SignatureError(AttnccError):
    """A call with the wrong number or kind of arguments."""


class CycleError(AttnccError):
    """A block that calls itself, directly or through others."""


class ExportError(AttnccError):
    """An export or verification step failed for a reason the user can act on."""


class InternalError(AttnccError):
    """A bug in attncc, not in the user's spec."""


def did_you_mean(word: str, candidates: Iterable[str], what: str = "name") -> tuple[str, ...]:
    """Hints for an unknown `word`: a close match, or the list of what is available."""
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(word, pool, n=3, cutoff=0.6)
    if close:
        return (f"did you mean {' or '.join(f'`{c}`' for c in close)}?",)
    if not pool:
        return ()
    shown = ", ".join(f"`{c}`" for c in pool[:24])
    more = f" and {len(pool) - 24} more" if len(pool) > 24 else ""
    nouns = what + ("es" if what.endswith("s") else "s")
    return (f"available {nouns}: {shown}{more}",)


def plural(n: int, word: str) -> str:
    """`1 argument`, `2 arguments`: a count with its noun."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


_COLORS = {"error": "\x1b[1;31m", "bold": "\x1b[1m", "caret": "\x1b[1;32m", "reset": "\x1b[0m"}


def use_color(stream: object = sys.stderr) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


def render(diag: Diagnostic, sources: Mapping[str, str], *, color: bool = False) -> str:
    """Render one diagnostic: `path:line:col: error: message`, the line, a caret, hints, notes."""
    c = _COLORS if color else dict.fromkeys(_COLORS, "")
    span = diag.span
    where = f"{c['bold']}{span}:{c['reset']} " if span else ""
    out = [f"{where}{c['error']}{diag.severity}:{c['reset']} {c['bold']}{diag.message}{c['reset']}"]
    text = sources.get(span.path) if span else None
    if span and text is not None:
        # lines end at "\n" only, as the lexer counts them (not at \r, \x0b, \u2028 ...)
        lines = text.split("\n")
        if 1 <= span.line <= len(lines):
            raw = lines[span.line - 1].rstrip("\r")
            # expand tabs identically for the line and the caret so they stay aligned
            shown = raw.expandtabs(4)
            col = len(raw[: span.col - 1].expandtabs(4))
            if span.end_line == span.line and span.end_col > span.col:
                width = len(raw[: span.end_col - 1].expandtabs(4)) - col
            else:
                width = 1
            underline = "^" + "~" * max(0, width - 1)
            gutter = f"{span.line:>5}"
            out.append(f"{gutter} | {shown}")
            out.append(f"{' ' * len(gutter)} | {' ' * col}{c['caret']}{underline}{c['reset']}")
    out.extend(f"  hint: {h}" for h in diag.hints)
    out.extend(f"  note: {n}" for n in diag.notes)
    return "\n".join(out)
