"""The pass pipeline: named in-place passes over the IR, each reporting whether it changed it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from attncc.diagnostics import AttnccError, InternalError, did_you_mean
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


from attncc.passes import (  # noqa: E402, F401
    algebra,
    attend,
    batch,
    canonicalize,
    cse,
    dce,
    infer_shapes,
    inplace,
    validate,
)

# order matters: canonicalize needs shapes; cleanup runs to a fixed point after it (attend,
# batch and algebra are in the cleanup group: off at -O0, and dce drops what they leave
# dead); inplace comes last, on the graph the code generator will see
PIPELINE = ("validate", "infer-shapes", "cse", "dce", "attend", "batch", "algebra",
            "canonicalize", "inplace")
MAX_CLEANUP_ROUNDS = 8


def plan(*, disable: Iterable[str] = (), until: str | None = None,
         opt_level: int = 1) -> list[str]:
    """The passes `run_pipeline` would run, in order; checks names and `requires` once.

    Naming an unknown pass, or disabling a pass that a running one requires, is the user's
    error (AttnccError); a PIPELINE whose own order breaks a `requires` is attncc's
    (InternalError).
    """
    disabled = set(disable)
    for name in sorted(disabled) + ([until] if until is not None else []):
        if name not in PASSES:
            raise AttnccError(f"unknown pass `{name}`", hints=did_you_mean(name, PIPELINE, "pass"))
    if opt_level == 0:
        disabled |= {p for p in PIPELINE if PASSES[p].cleanup}
    order = [p for p in PIPELINE if p not in disabled]
    if until is not None:
        if until not in order:
            why = "is disabled" if until in set(disable) else f"does not run at -O{opt_level}"
            raise AttnccError(f"cannot stop after pass `{until}`: it {why}")
        order = order[: order.index(until) + 1]
    for i, name in enumerate(order):
        for req in PASSES[name].requires:
            if req in order[:i]:
                continue
            if req in disabled:
                raise AttnccError(f"pass `{name}` needs pass `{req}`, which is disabled",
                                  hints=(f"disable `{name}` too, or enable `{req}`",))
            raise InternalError(f"pass '{name}' requires '{req}' to run first; PIPELINE is "
                                f"{list(PIPELINE)}")
    return order


def run_pipeline(ir: IR, *, disable: Iterable[str] = (), until: str | None = None,
                 check_each: bool | None = None, opt_level: int = 1) -> list[str]:
    """Run the pipeline in place; returns the names of passes that changed the IR.

    `opt_level=0` runs only the passes every backend needs (validate, infer-shapes,
    canonicalize); `until` stops after the named pass (for `attncc show --after`). A run of
    consecutive cleanup passes repeats, as a group, until none changes the IR (at most
    MAX_CLEANUP_ROUNDS times). With `check_each`, `ir.lint()` runs after every pass; without
    it, once at the end. Its default, None, reads the environment: ATTNCC_CHECK_PASSES=1 (the
    test suite sets it) checks after every pass -- a third of a compile's time otherwise.

    Example:
        >>> from attncc.elaborate import elaborate
        >>> ir = elaborate("block B(x: [N, C]) { return relu(x) + relu(x) }")
        >>> run_pipeline(ir)
        ['cse']
    """
    if check_each is None:
        check_each = os.environ.get("ATTNCC_CHECK_PASSES", "") not in ("", "0")
    order = plan(disable=disable, until=until, opt_level=opt_level)
    changed: list[str] = []
    done: list[str] = []
    i = 0
    while i < len(order):
        group = [order[i]]
        while (PASSES[group[0]].cleanup and i + len(group) < len(order)
               and PASSES[order[i + len(group)]].cleanup):
            group.append(order[i + len(group)])
        for _ in range(MAX_CLEANUP_ROUNDS if PASSES[group[0]].cleanup else 1):
            modified = [name for name in group if _run_one(ir, name, done, check_each)]
            changed += [name for name in modified if name not in changed]
            if not modified:
                break
        i += len(group)
    if not check_each:
        ir.lint()
    return changed


def _run_one(ir: IR, name: str, done: list[str], check_each: bool) -> bool:
    try:
        modified = PASSES[name].fn(ir)
    except AttnccError:
        raise
    except Exception as err:  # a bug in attncc: say where, keep the cause
        raise InternalError(f"pass '{name}' failed after {done}: {err!r}") from err
    if check_each:
        ir.lint()
    if name not in done:
        done.append(name)
    return bool(modified)
