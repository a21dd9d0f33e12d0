"""`attncc.insert`: put compiled attention blocks into any existing torch model.

A block goes after each chosen module: it is registered as a child of that module (so its
parameters train, move and save with the model, under `<module>.attn.*`) and applied to the
module's output by a forward hook. Every existing state_dict key stays as it was, so weights
saved from the plain model still load (`strict=False`, missing only the blocks' keys).

The channels there (`C`) come from the module (`out_channels`, `num_features`,
`out_features`) or, with `example=`, from a dry run that records each chosen module's output
shape, which also gives the map size to blocks that fix it (FcaNet).

Example:
    >>> import attncc, torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU())
    >>> net2, added = attncc.insert(net, "se", where=nn.BatchNorm2d, r=4)
    >>> [(a.position, a.block.ir.block, a.hyper["C"]) for a in added]
    [('1', 'SE', 16)]
    >>> net2(torch.randn(2, 3, 9, 9)).shape
    torch.Size([2, 16, 7, 7])
"""

from __future__ import annotations

import copy as copy_module
import fnmatch
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from attncc.diagnostics import HyperparameterError, NameError_, did_you_mean

Where = str | Sequence[str] | type | tuple[type, ...] | Callable[[str, Any], bool]


class Inserted(NamedTuple):
    """One inserted block: the module it follows, the block, its hyperparameters (with C)."""

    position: str
    block: Any
    hyper: dict[str, Any]


class ApplyChild:
    """A forward hook that passes the module's output through its child `name` (picklable)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, module: Any, args: Any, output: Any) -> Any:
        return getattr(module, self.name)(output)


def insert(model: Any, spec: Any, where: Where, *, example: Any = None, name: str = "attn",
           copy: bool = True, **hyper: Any) -> tuple[Any, list[Inserted]]:
    """Insert a compiled block after every module `where` chooses.

    Args:
        model: any torch.nn.Module.
        spec: a bundled spec name, a path, spec text, or a factory `f(C, **hyper) -> Module`.
        where: a module name (`"layer1.0.bn2"`), a glob over names (`"layer*.*.bn3"`), a list
            of names, a module type or tuple of types (`nn.BatchNorm2d`), or a predicate
            `f(name, module) -> bool`.
        example: an input for a dry run (a tensor or a tuple of them) that gives each chosen
            module's output shape; without it, C comes from the module's attributes.
        name: the attribute the block is registered under in the chosen module (`attn`;
            `attn_1`, ... if taken).
        copy: insert into a deep copy (default) rather than into `model` itself.
        **hyper: the block's hyperparameters (`r=8`).

    Returns:
        (the model with the blocks, [Inserted(position, block, hyperparameters), ...]).
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise HyperparameterError(f"insert needs a torch.nn.Module, not {type(model).__name__}")
    chosen = select(model, where)
    shapes = _dry_run(model, chosen, example) if example is not None else {}
    if copy:
        model = copy_module.deepcopy(model)
    modules = dict(model.named_modules())
    added: list[Inserted] = []
    for position in chosen:
        shape = shapes.get(position)
        module = modules[position]
        block, bound = _build(spec, hyper, shape, module, position)
        host = _host(module, position)
        attr = _free_name(host, name)
        host.add_module(attr, block)
        host.register_forward_hook(ApplyChild(attr))
        added.append(Inserted(position, block, bound))
    return model, added


def select(model: Any, where: Where) -> list[str]:
    """Names of the modules `where` chooses, in the model's order (the root is `""`)."""
    named = dict(model.named_modules())
    if isinstance(where, type) or (isinstance(where, tuple) and where
                                   and all(isinstance(w, type) for w in where)):
        found = [n for n, m in named.items() if isinstance(m, where)]
        what = f"no module of type {getattr(where, '__name__', where)}"
    elif isinstance(where, str) or (isinstance(where, Sequence)
                                    and all(isinstance(w, str) for w in where)):
        patterns = [where] if isinstance(where, str) else list(where)
        found = []
        for pat in patterns:
            hits = ([n for n in named if fnmatch.fnmatchcase(n, pat)]
                    if any(ch in pat for ch in "*?[") else [pat] if pat in named else [])
            if not hits:
                raise NameError_(f"the model has no module named `{pat}`",
                                 hints=did_you_mean(pat, [n for n in named if n], "module"))
            found += [h for h in hits if h not in found]
        found = [n for n in named if n in found]
        what = ""
    elif callable(where):
        found = [n for n, m in named.items() if where(n, m)]
        what = "no module satisfies the predicate"
    else:
        raise HyperparameterError(
            f"where= must be a module name, a list of names, a type or a predicate, not "
            f"{type(where).__name__}")
    if not found:
        raise HyperparameterError(f"nothing to insert after: {what}")
    return found


def _dry_run(model: Any, chosen: list[str], example: Any) -> dict[str, tuple[int, ...]]:
    """Each chosen module's output shape, from one forward pass in eval mode."""
    import torch

    shapes: dict[str, tuple[int, ...]] = {}
    named = dict(model.named_modules())
    handles = []
    for position in chosen:
        def record(mod: Any, args: Any, out: Any, position: str = position) -> None:
            if isinstance(out, torch.Tensor):
                shapes[position] = tuple(out.shape)
        handles.append(named[position].register_forward_hook(record))
    was = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            model(*example) if isinstance(example, (tuple, list)) else model(example)
    finally:
        for h in handles:
            h.remove()
        for m, t in was.items():
            m.train(t)
    return shapes


def channels_of(module: Any) -> int | None:
    """The channels a module outputs, from its attributes (conv, BN, linear, containers)."""
    for attr in ("out_channels", "num_features", "out_features", "num_channels"):
        value = getattr(module, attr, None)
        if isinstance(value, int):
            return value
    children = list(module.children())
    for child in reversed(children):  # a container: its last layer with a width
        c = channels_of(child)
        if c is not None:
            return c
    return None


class _Shape:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


def _build(spec: Any, hyper: dict[str, Any], shape: tuple[int, ...] | None, module: Any,
           position: str) -> tuple[Any, dict[str, Any]]:
    c = shape[1] if shape is not None and len(shape) > 1 else channels_of(module)
    if c is None:
        raise HyperparameterError(
            f"cannot tell the channels after `{position or '<root>'}` "
            f"({type(module).__name__} has no out_channels / num_features)",
            hints=("pass example=<an input tensor> for a dry run",))
    if callable(spec) and not isinstance(spec, (str, Path)):
        return spec(c, **hyper), {"C": c, **hyper}
    from attncc.api import compile as compile_spec

    if shape is not None:
        block = compile_spec(spec, example=_Shape((1, *shape[1:])), **hyper)
    else:
        block = compile_spec(spec, C=c, **hyper)
    return block, {"C": c, **block.ir.hyper}


def _host(module: Any, position: str) -> Any:
    """The module that holds the block and its hook: the chosen one, or for a Sequential
    (whose forward runs every child) its last leaf, whose output is the Sequential's."""
    import torch

    while isinstance(module, torch.nn.Sequential):
        if not len(module):
            raise HyperparameterError(f"`{position}` is an empty Sequential")
        module = module[-1]
    if isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
        raise HyperparameterError(
            f"`{position}` is a {type(module).__name__}, which has no output to follow",
            hints=("choose the modules inside it",))
    return module


def _free_name(host: Any, name: str) -> str:
    attr, i = name, 0
    while hasattr(host, attr):
        i += 1
        attr = f"{name}_{i}"
    return attr

