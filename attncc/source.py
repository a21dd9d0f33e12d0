"""Spec files: parsing a file and the files it `use`s (inside a sandbox), and the entry block."""

from __future__ import annotations

import itertools
from pathlib import Path, PurePosixPath

from attncc import hyper
from attncc.diagnostics import (
    AttnccError,
    CycleError,
    Diagnostic,
    NameError_,
    SignatureError,
    Span,
    did_you_mean,
)
from attncc.ops import has_op
from attncc.syntax import ast, parse


def load_module(text: str, path: str, library: Path | None = None,
                sources: dict[str, str] | None = None,
                _chain: tuple[str, ...] = (), _root: Path | None = None,
                max_depth: int = 16) -> dict[str, ast.Block]:
    """Parse a file and the files it `use`s; returns every block by name.

    `use` paths are relative to the using file. Every file read must lie inside the folder of
    the file being compiled (`_root`) or the bundled library. `use` chains longer than
    `max_depth` files are refused (attncc.limits `use_depth`).
    """
    sources = sources if sources is not None else {}
    sources[path] = text
    module = parse(text, path)
    here = path if path.startswith("<") else str(Path(path).resolve())
    root = _root or (Path.cwd() if path.startswith("<") else Path(path).parent).resolve()
    chain = (*_chain, here)
    blocks: dict[str, ast.Block] = {}
    for use in module.uses:
        target = _resolve_use(use, path, root, library)
        key = str(target)
        if key in chain:
            shown = " -> ".join(_chain_name(p, root) for p in (*chain, key))
            raise CycleError(f"`use` cycle: {shown}", use.path_span or use.span,
                             hints=("move the blocks both files need into a third file",))
        if len(chain) > max_depth:
            shown = " -> ".join(_chain_name(p, root) for p in (*chain, key))
            raise CycleError(f"`use` nested deeper than {max_depth} files: {shown}",
                             use.path_span or use.span,
                             hints=("raise the limit with `--limit use_depth=N` "
                                    "(attncc.limits) if this is intended",))
        try:
            used = read_text(target)
        except AttnccError as err:
            raise err.with_note(f"`use`d at {use.path_span or use.span}") from None
        except OSError as err:
            raise NameError_(f"cannot read `{use.path}`: {err}", use.path_span or use.span,
                             hints=("a `use`d file must be a UTF-8 .attn text file",)) from None
        blocks.update(load_module(used, key, library, sources, chain, root, max_depth))
    mine: dict[str, ast.Block] = {}
    for b in module.blocks:
        if b.name.text in mine:
            raise NameError_(f"block `{b.name.text}` is defined twice", b.name.span,
                             hints=("rename one of them",),
                             notes=(f"first defined at {mine[b.name.text].name.span}",))
        if has_op(b.name.text) or b.name.text in hyper.FUNCTIONS or b.name.text == "seq":
            what = "an op" if has_op(b.name.text) else "a builtin function"
            raise NameError_(f"block `{b.name.text}` has the name of {what}", b.name.span,
                             hints=("rename the block",))
        mine[b.name.text] = blocks[b.name.text] = b
    return blocks


def read_text(path: Path) -> str:
    """A spec file's text; bytes that are not UTF-8 raise an error at their line and column.

    OSError (a missing or unreadable file) passes through for the caller to word.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8", "replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        text = data.decode("utf-8", "replace")
        span = Span(str(path), line, col, line, col + 1)
        raise AttnccError(Diagnostic(
            f"the file is not UTF-8 text: byte 0x{data[err.start]:02x} cannot be decoded",
            span, hints=("save the spec as UTF-8",))).with_sources({str(path): text}) from None


def _chain_name(p: str, root: Path) -> str:
    """A file of a `use` chain, relative to the compiled file's folder when it lies inside."""
    if p.startswith("<") or not Path(p).is_relative_to(root):
        return p
    return Path(p).relative_to(root).as_posix()


def _resolve_use(use: ast.UseDecl, path: str, root: Path, library: Path | None) -> Path:
    here = (Path.cwd() if path.startswith("<") else Path(path).parent).resolve()
    allowed = [root] + ([library.resolve()] if library else [])
    bases = [here] + ([library.resolve()] if library else [])
    span = use.path_span or use.span
    if not use.path.isprintable():  # a NUL byte or a control character: no file has that name
        raise NameError_(f"`use` path {use.path!r} contains a character that is not printable",
                         span, hints=("`use` names an .attn file, e.g. `use \"parts/gate.attn\"`",))
    escapes = True
    for base in bases:
        cand = (base / use.path).resolve()
        # resolve() has followed symlinks, so a link pointing outside is refused as well
        if not any(cand.is_relative_to(a) for a in allowed):
            continue
        escapes = False
        if cand.is_file():
            return cand
    where = "the compiled spec's folder" + (" (or the bundled library)" if library else "")
    if escapes:
        raise NameError_(
            f"`use` path `{use.path}` leaves the spec's folder", span,
            hints=(f"`use` reads only files inside {where}; copy the file there",))
    # suggestions come from the folder the path names, as the user would write them
    folder = PurePosixPath(use.path).parent
    dirs = [(base / folder).resolve() for base in bases]
    near = sorted({(folder / f.name).as_posix() for d in dirs
                   if d.is_dir() and any(d.is_relative_to(a) for a in allowed)
                   for f in itertools.islice(d.glob("*.attn"), 200)})
    raise NameError_(f"cannot find `{use.path}`", span,
                     hints=("`use` paths are relative to the file that uses them",
                            *did_you_mean(use.path, near, "file")))


def entry_block(blocks: dict[str, ast.Block], path: str, name: str | None,
                text_blocks: list[str]) -> ast.Block:
    if name is not None:
        if name not in blocks:
            raise NameError_(f"no block named `{name}`", None,
                             hints=did_you_mean(name, blocks, "block"))
        return blocks[name]
    if not text_blocks:
        raise SignatureError("the spec defines no block", None,
                             hints=("write `block Name(x: [N, C, H, W]) { ... }`",))
    stem = Path(path).stem.lower()
    for b in text_blocks:
        if b.lower() == stem:
            return blocks[b]
    return blocks[text_blocks[-1]]
