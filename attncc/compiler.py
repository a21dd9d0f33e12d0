"""The compile driver: spec text + hyperparameters -> checked, optimised IR (cached)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attncc.diagnostics import AttnccError, HyperparameterError, InternalError
from attncc.ir import IR


@dataclass(frozen=True)
class Source:
    text: str
    path: str


def read_source(path_or_text: str | Path) -> Source:
    """A spec given as a path, a bundled name (`cbam`) or the text itself."""
    from attncc.library import find_spec

    if isinstance(path_or_text, Path):
        return Source(_read(path_or_text), str(path_or_text))
    s = str(path_or_text)
    if "{" in s or "\n" in s:
        return Source(s, "<string>")
    p = Path(s)
    if p.suffix == ".attn" or p.exists():
        return Source(_read(p), s)
    found = find_spec(s)
    return Source(_read(found), str(found))


def _read(p: Path) -> str:
    from attncc.source import read_text

    try:
        return read_text(p)  # undecodable bytes: an error at their line and column
    except FileNotFoundError:
        raise AttnccError(f"no such file: {p}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AttnccError(f"cannot read {p}: {err}") from None


def example_sizes(ir_inputs: list[tuple[str, tuple[str, ...]]],
                  shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Dim sizes from example input shapes: `x=2,64,17,23` with x: [N, C, H, W] -> N=2, ..."""
    sizes: dict[str, int] = {}
    names = dict(ir_inputs)
    for name, shape in shapes.items():
        if name not in names:
            raise HyperparameterError(f"the block has no input `{name}`",
                                      hints=(f"inputs: {', '.join(names)}",))
        dims = names[name]
        if len(shape) != len(dims):
            raise HyperparameterError(
                f"input `{name}` has {len(dims)} dims [{', '.join(dims)}], but the shape "
                f"{','.join(map(str, shape))} has {len(shape)}")
        for d, s in zip(dims, shape, strict=True):
            if s < 1:
                raise HyperparameterError(f"dim `{d}` of `{name}` must be positive, got {s}")
            if sizes.get(d, s) != s:
                raise HyperparameterError(f"dim `{d}` is {sizes[d]} and {s} in the shapes given")
            sizes[d] = s
    return sizes


def _entry(source: Source, block: str | None):
    from attncc.library import library_dir
    from attncc.source import entry_block, load_module
    from attncc.syntax import parse

    sources: dict[str, str] = {}
    try:
        blocks = load_module(source.text, source.path, library_dir(), sources)
        own = [b.name.text for b in parse(source.text, source.path).blocks]
        return entry_block(blocks, source.path, block, own)
    except AttnccError as err:
        raise err.with_sources(sources) from None


def example_shapes(source: Source, block: str | None = None,
                   hyper: Mapping[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
    """The spec's `example` input shapes, with dims that `hyper` sets replaced by its values."""
    from attncc.syntax import ast

    entry = _entry(source, block)
    dims = {p.name.text: [d.text for d in p.type.dims] for p in entry.params
            if isinstance(p.type, ast.TensorTypeAst)}
    out: dict[str, tuple[int, ...]] = {}
    for stmt in entry.body:
        if isinstance(stmt, ast.ExampleDecl) and stmt.target.text in dims:
            names = dims[stmt.target.text]
            out[stmt.target.text] = tuple(
                int(hyper[d]) if hyper and d in hyper and isinstance(hyper[d], int) else s
                for d, s in zip(names, stmt.shape, strict=False))
    return out


def _freeze(m: Mapping[str, Any] | None) -> tuple:
    return tuple(sorted((m or {}).items()))


def presets(source: Source, block: str | None = None) -> dict[str, dict[str, Any]]:
    """The entry block's named presets, each a mapping of hyperparameter values."""
    from attncc import hyper as hyper_eval
    from attncc.diagnostics import NameError_, SignatureError, did_you_mean
    from attncc.syntax import ast

    entry = _entry(source, block)
    params = {p.name.text for p in entry.params if not isinstance(p.type, ast.TensorTypeAst)}

    def no_names(var: ast.Var) -> Any:
        raise SignatureError("preset values are numbers or true/false", var.span)

    found: dict[str, dict[str, Any]] = {}
    try:
        for stmt in entry.body:
            if not isinstance(stmt, ast.PresetDecl):
                continue
            if stmt.name.text in found:
                raise NameError_(f"preset `{stmt.name.text}` is defined twice", stmt.name.span)
            values: dict[str, Any] = {}
            for kw in stmt.values:
                if kw.name.text not in params:
                    raise NameError_(
                        f"`{entry.name.text}` has no hyperparameter `{kw.name.text}`",
                        kw.name.span, hints=did_you_mean(kw.name.text, params, "hyperparameter"))
                values[kw.name.text] = hyper_eval.evaluate(kw.value, no_names)
            found[stmt.name.text] = values
    except AttnccError as err:
        raise err.with_sources({source.path: source.text}) from None
    return found


def apply_preset(source: Source, preset: str | None, hyper: Mapping[str, Any] | None,
                 block: str | None = None) -> dict[str, Any]:
    """Hyperparameters with a named preset's values filled in under the explicit ones."""
    merged = dict(hyper or {})
    if preset is None:
        return merged
    table = presets(source, block)
    if preset not in table:
        from attncc.diagnostics import NameError_, did_you_mean

        raise NameError_(f"no preset named `{preset}`",
                         hints=did_you_mean(preset, table, "preset") or ("the spec has none",))
    return {**table[preset], **merged}


def compile_ir(source: Source, hyper: Mapping[str, Any] | None = None,
               shapes: Mapping[str, tuple[int, ...]] | None = None, *,
               block: str | None = None, opt_level: int = 1,
               until: str | None = None, preset: str | None = None,
               disable: tuple[str, ...] = ()) -> IR:
    """Elaborate and run the pass pipeline; cached by (spec text, hyperparameters, shapes).

    `preset` names a `preset` of the spec whose values apply under the explicit `hyper`;
    `disable` names passes to skip (`run_pipeline`'s `disable`).
    """
    hyper = apply_preset(source, preset, hyper, block)
    if until is not None:
        from attncc.passes import PIPELINE

        if until not in PIPELINE:
            from attncc.diagnostics import did_you_mean

            raise AttnccError(f"no pass named `{until}`",
                              hints=did_you_mean(until, PIPELINE, "pass"))
    from attncc.limits import current

    # surrogatepass: a str from the API may hold lone surrogates (the lexer refuses them)
    digest = hashlib.sha256(source.text.encode("utf-8", "surrogatepass")).hexdigest()
    return _compile_cached(digest, source, _freeze(hyper),
                           tuple(sorted((k, tuple(v)) for k, v in (shapes or {}).items())),
                           block, opt_level, until, preset, tuple(sorted(disable)), current())


@functools.lru_cache(maxsize=256)
def _compile_cached(digest: str, source: Source, hyper: tuple, shapes: tuple,
                    block: str | None, opt_level: int, until: str | None,
                    preset: str | None, disable: tuple[str, ...] = (),
                    limits: Any = None) -> IR:
    from attncc.elaborate import elaborate
    from attncc.library import library_dir
    from attncc.passes import run_pipeline

    hyper_d, shapes_d = dict(hyper), dict(shapes)
    example: dict[str, int] = {}
    if shapes_d:
        # the input declarations are needed to map shapes onto dim names
        entry = _entry(source, block)
        decl = [(p.name.text, tuple(d.text for d in p.type.dims)) for p in entry.params
                if p.type is not None and hasattr(p.type, "dims")]
        example = example_sizes(decl, shapes_d)
        for d, s in example.items():
            if d in hyper_d and hyper_d[d] != s:
                raise HyperparameterError(f"`{d}` is {hyper_d[d]} but the shape given says {s}")
    ir = elaborate(source.text, source.path, block=block, hyper_values=hyper_d, example=example,
                   library=library_dir(), limits=limits)
    ir.preset = preset
    try:
        run_pipeline(ir, opt_level=opt_level, until=until, disable=disable)
    except AttnccError as err:
        raise err.with_sources(ir.sources) from None
    except Exception as err:  # pragma: no cover - run_pipeline wraps its own failures
        raise InternalError(repr(err)) from err
    return ir
