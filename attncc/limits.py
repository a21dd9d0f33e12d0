"""Resource limits: what a spec may ask of the compiler before anything is allocated.

A spec is data, and data can be hostile or simply wrong by a factor of a million (`--set
C=1000000000000`). The front end refuses, with a diagnostic at the cause, a block that would

- hold more than `params` learnable parameters (all of them together),
- hold more than `constant_bytes` of compile-time constants (buffers such as the DCT basis),
- make any single intermediate tensor larger than `intermediate_bytes` at the requested shape,
- unroll a `repeat` more than `repeat` times, nest blocks deeper than `block_depth`, `use`
  files nested deeper than `use_depth`, nest expressions deeper than `nesting` levels of
  syntax, or grow to more than `nodes` graph nodes (nested `repeat`s and blocks multiply).

Sizes are float32 (4 bytes an element). "At the requested shape" means: dims fixed by
hyperparameters, by the block, or by the example input shapes given (`shapes=`, `--shape`, the
spec's `example`); a dim known only at run time (often N, H, W) counts as 1, so the check is a
lower bound that never refuses a block which fits.

The limits are set, in increasing priority, by the defaults below, the environment variable
`ATTNCC_LIMITS` (`ATTNCC_LIMITS="params=2e9,intermediate_bytes=16GiB"`), the API
(`attncc.limits.set_limits(params=10**10)`, or `with attncc.limits.using(repeat=256): ...`),
and the command line (`attncc check spec.attn --limit params=1e10`, repeatable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attncc.diagnostics import AttnccError, Diagnostic, did_you_mean

if TYPE_CHECKING:
    from attncc.ir import IR

GiB = 2**30
BYTES_PER_ELEMENT = 4  # float32; int64 index buffers count 8


class ResourceError(AttnccError):
    """A block that would exceed a resource limit (see `attncc.limits`)."""


@dataclass(frozen=True)
class Limits:
    params: int = 10**9  # learnable parameters, in total
    constant_bytes: int = 2 * GiB  # compile-time constants (buffers), in total
    intermediate_bytes: int = 8 * GiB  # the largest single tensor the forward pass makes
    repeat: int = 64  # iterations of one `repeat`
    block_depth: int = 32  # blocks calling blocks
    use_depth: int = 16  # files `use`-ing files
    nesting: int = 100  # levels of syntax (brackets, operators) in one declaration
    nodes: int = 4096  # graph nodes of one block (the bundled specs: <= 300; ~1 s to compile)

    def replace(self, **changes: int) -> Limits:
        for key, value in changes.items():
            if key not in _FIELDS:
                raise AttnccError(f"no limit named `{key}`",
                                  hints=did_you_mean(key, _FIELDS, "limit"))
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AttnccError(f"limit `{key}` must be a whole number >= 0, got {value!r}")
        return dataclasses.replace(self, **changes)


_FIELDS = tuple(f.name for f in dataclasses.fields(Limits))
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "kb": 10**3,
          "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": GiB,
          "tib": 2**40}
_VALUE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+]?[0-9]+)?)\s*([A-Za-z]*)\s*")


def parse_value(text: str) -> int:
    """`1e9`, `2GiB`, `500M`, `64` -> a whole number."""
    m = _VALUE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise AttnccError(f"`{text}` is not a limit value",
                          hints=("give a whole number, optionally with an exponent or a unit: "
                                 "`1e9`, `64`, `2GiB`, `500MB`",))
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value > 2**62:
        raise AttnccError(f"`{text}` is too large for a limit")
    return int(value)


def parse_settings(items: str | list[str]) -> dict[str, int]:
    """`"params=1e9,repeat=128"` (or a list of `K=V`) -> {"params": 10**9, "repeat": 128}."""
    parts = items.split(",") if isinstance(items, str) else list(items)
    out: dict[str, int] = {}
    for item in parts:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise AttnccError(f"a limit is written NAME=VALUE, got `{item}`",
                              hints=(f"limits: {', '.join(_FIELDS)}",))
        if key not in _FIELDS:
            raise AttnccError(f"no limit named `{key}`", hints=did_you_mean(key, _FIELDS, "limit"))
        out[key] = parse_value(value)
    return out


def _from_env() -> Limits:
    text = os.environ.get("ATTNCC_LIMITS", "")
    try:
        return Limits().replace(**parse_settings(text))
    except AttnccError as err:
        raise AttnccError(f"ATTNCC_LIMITS: {err.diagnostics[0].message}",
                          hints=err.diagnostics[0].hints) from None


_current: Limits | None = None


def current() -> Limits:
    """The limits in force: set_limits/using over ATTNCC_LIMITS over the defaults."""
    return _current if _current is not None else _from_env()


def set_limits(**changes: int) -> Limits:
    """Change limits for the rest of the process (`set_limits(params=10**10)`); returns them."""
    global _current
    _current = current().replace(**changes)
    return _current


def reset_limits() -> None:
    """Back to ATTNCC_LIMITS and the defaults."""
    global _current
    _current = None


@contextlib.contextmanager
def using(**changes: int) -> Iterator[Limits]:
    """Limits changed inside a `with` block only."""
    global _current
    saved = _current
    _current = current().replace(**changes)
    try:
        yield _current
    finally:
        _current = saved


# ---- the checks of an elaborated block ----
def _size_text(n: int, unit: str) -> str:
    if unit == "bytes":
        for scale, name in ((2**40, "TiB"), (GiB, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if n >= scale:
                return f"{n / scale:.3g} {name}"
        return f"{n} bytes"
    return f"{n:,}"


def _setting_hint(key: str, value: int) -> str:
    return (f"if this is intended, raise the limit: `--limit {key}={value:.3g}` on the command "
            f"line, `attncc.limits.set_limits({key}=...)` or ATTNCC_LIMITS")


def enforce(ir: IR, sizes: Mapping[str, int], limits: Limits | None = None,
            aliases: Mapping[str, str] | None = None) -> None:
    """Raise ResourceError when `ir` breaks a limit; `sizes` fill dims known only at run time,
    `aliases` map a renamed run-time dim to the dim it renames (`as`).

    Nothing is allocated: parameter, constant and tensor sizes come from the IR's types.
    """
    lim = limits or current()
    diags: list[Diagnostic] = []
    aliases = aliases or {}

    def dim_size(d: str) -> int | None:
        seen = set()
        while ir.dims.get(d) is None and d not in sizes and d in aliases and d not in seen:
            seen.add(d)
            d = aliases[d]
        s = ir.dims.get(d)
        return s if s is not None else sizes.get(d)

    params, consts = [], []
    for n in ir.params():
        nd = ir.node(n)
        numel = math.prod(nd.param.shape)
        (consts if nd.param.buffer else params).append((numel, nd))
    total = sum(numel for numel, _ in params)
    if total > lim.params:
        numel, nd = max(params, key=lambda p: p[0])
        diags.append(Diagnostic(
            f"the block has {_size_text(total, 'n')} parameters, more than the limit of "
            f"{_size_text(lim.params, 'n')}", nd.span,
            hints=(_setting_hint("params", max(total, lim.params * 10)),),
            notes=(f"the largest, `{nd.name}` of shape {list(nd.param.shape)}, has "
                   f"{_size_text(numel, 'n')}",)))
    const_bytes = sum(numel * _itemsize(nd.param.dtype) for numel, nd in consts)
    if const_bytes > lim.constant_bytes:
        numel, nd = max(consts, key=lambda p: p[0])
        diags.append(Diagnostic(
            f"the block's constants take {_size_text(const_bytes, 'bytes')}, more than the "
            f"limit of {_size_text(lim.constant_bytes, 'bytes')}", nd.span,
            hints=(_setting_hint("constant_bytes", const_bytes),),
            notes=(f"the largest, `{nd.name}` of shape {list(nd.param.shape)}",)))
    worst = None
    for n in ir.topo():
        nd = ir.node(n)
        if nd.op == "param":
            continue
        shape = [1 if d in nd.out.bcast else dim_size(d) for d in nd.out.dims]
        nbytes = math.prod(s or 1 for s in shape) * _itemsize(nd.out.dtype)
        if nbytes > lim.intermediate_bytes and (worst is None or nbytes > worst[0]):
            worst = (nbytes, nd, shape)
    if worst is not None:
        nbytes, nd, shape = worst
        dims = ", ".join(f"{d}={s}" if s else d for d, s in zip(nd.out.dims, shape, strict=True))
        unknown = " (dims known only at run time count 1)" if None in shape else ""
        what = "input" if nd.op == "input" else f"`{nd.op}`"
        diags.append(Diagnostic(
            f"tensor `{nd.name}` ({what}) would take {_size_text(nbytes, 'bytes')}, more than "
            f"the limit of {_size_text(lim.intermediate_bytes, 'bytes')} for one tensor",
            nd.span, hints=(_setting_hint("intermediate_bytes", nbytes),),
            notes=(f"its shape: [{dims}]{unknown}",)))
    if diags:
        raise ResourceError(diags)


def _itemsize(dtype: str) -> int:
    return 8 if dtype in ("int64", "float64") else BYTES_PER_ELEMENT
