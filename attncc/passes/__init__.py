"""The pass pipeline: named in-place passes over the IR, each reporting whether it changed it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from attncc.diagnostics import AttnccError, InternalError
from attncc.ir import IR


@dataclass(frozen=True)
class Pass:
    name: str
    fn: Callable[[IR], bool]
    requires: tuple[str, ...] = ()
    cleanup: bool = False  # part of the fixed-point cleanup group


PASSES: dict[str, Pass] = {}


def ir_pass(name: str, requires: tuple[str, ...] = (), cleanup: bool = False):
    """Register `fn(ir) -> changed` as a pass under `name`."""

    def deco(fn: Callable[[IR], bool]) -> Callable[[IR], bool]:
        if name in PASSES:
            raise ValueError(f"pass `{name}` is registered twice")
        PASSES[name] = Pass(name, fn, requires, cleanup)
        return fn

    return deco


from attncc.passes import canonicalize, cse, dce, infer_shapes, validate  # noqa: E402, F401

# order matters: canonicalize needs shapes; cleanup runs to a fixed point after it
PIPELINE = ("validate", "infer-shapes", "cse", "dce", "canonicalize")
MAX_CLEANUP_ROUNDS = 8


def run_pipeline(ir: IR, *, disable: Iterable[str] = (), until: str | None = None,
                 check_each: bool = True, opt_level: int = 1) -> list[str]:
    """Run the pipeline in place; returns the names of passes that changed the IR.

    `opt_level=0` runs only the passes every backend needs (validate, infer-shapes,
    canonicalize); `until` stops after the named pass (for `attncc show --after`).
    """
    disabled = set(disable)
    unknown = disabled - set(PASSES)
    if unknown:
        raise AttnccError(f"unknown pass `{sorted(unknown)[0]}`",
                          hints=(f"passes: {', '.join(PIPELINE)}",))
    if opt_level == 0:
        disabled |= {p for p in PIPELINE if PASSES[p].cleanup}
    changed: list[str] = []
    done: list[str] = []
    for name in PIPELINE:
        p = PASSES[name]
        if name in disabled:
            continue
        missing = [r for r in p.requires if r not in done]
        if missing:
            raise InternalError(f"pass '{name}' requires {missing} to run first")
        rounds = MAX_CLEANUP_ROUNDS if p.cleanup else 1
        for _ in range(rounds):
            try:
                modified = p.fn(ir)
            except AttnccError:
                raise
            except Exception as err:  # a bug in attncc: say where, keep the cause
                raise InternalError(f"pass '{name}' failed after {done}: {err!r}") from err
            if modified:
                changed.append(name)
            if check_each:
                ir.lint()
            if not modified:
                break
        done.append(name)
        if name == until:
            break
    return changed
