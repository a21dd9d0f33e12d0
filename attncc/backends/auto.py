"""`backend="auto"`: a compiled module that runs inference in whichever of its backends is
faster for each input shape, measured on first use.

The module is the generated class itself (same parameters, same state_dict keys, trainable as
ever); only its forward gains a dispatch. Anything autograd, torch.compile, jit tracing or a
non-CPU/non-float32 input could touch runs the PyTorch forward unchanged; so do training mode
and `return_attention=True`. Otherwise, the first call at a new set of input shapes times the
PyTorch forward and onnxruntime on the exported graph (interleaved, best of a few calls each,
onnxruntime on as many threads as torch) and keeps the faster; `auto_choices` shows what was
measured. The ONNX graph is exported from the current weights and rebuilt whenever a parameter
or buffer changes (torch bumps a tensor's version on every in-place write: an optimiser step,
`load_state_dict`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

BACKENDS = ("torch", "auto")
TRIALS = 3  # timed calls per backend when choosing (after one warm-up each)


@dataclass(frozen=True)
class Choice:
    """What `backend="auto"` measured for one set of input shapes."""

    backend: str  # "torch" | "onnxruntime"
    torch_ms: float
    onnxruntime_ms: float | None
    note: str = ""


def make_auto(cls: type) -> type:
    """A subclass of the generated module class whose forward picks its backend."""
    home = sys.modules.get(cls.__module__)
    known = getattr(home, f"{cls.__qualname__}_auto", None)
    if known is not None:
        return known

    class Auto(cls):  # type: ignore[misc, valid-type]
        __doc__ = cls.__doc__

        def forward(self, *args: Any, return_attention: bool = False) -> Any:
            import torch

            if return_attention or not _eligible(self, args):
                return super().forward(*args, return_attention=return_attention)
            key = tuple(tuple(a.shape) for a in args)
            choice = self.auto_choices.get(key)
            if choice is None:
                choice = self.auto_choices[key] = _choose(self, args)
            if choice.backend == "onnxruntime":
                outs = _session(self).run(None, {n: a.numpy() for n, a in
                                                 zip(self._auto_inputs(), args, strict=True)})
                ys = tuple(torch.from_numpy(o) for o in outs)
                return ys[0] if len(ys) == 1 else ys
            return super().forward(*args)

        def _auto_inputs(self) -> list[str]:
            return [self.ir.node(n).name for n in self.ir.inputs]

        def __getstate__(self) -> dict[str, Any]:  # sessions do not pickle or deepcopy
            state = super().__getstate__() if hasattr(super(), "__getstate__") else \
                self.__dict__.copy()
            state = dict(state)
            state["_auto_session"] = None
            return state

    # shown as the block's class; found by pickle beside it in the generated module
    Auto.__name__, Auto.__qualname__ = cls.__name__, f"{cls.__qualname__}_auto"
    Auto.__module__ = cls.__module__
    if home is not None:
        setattr(home, Auto.__qualname__, Auto)
    return Auto


def init_auto(module: Any) -> Any:
    module.auto_choices = {}
    module._auto_session = None  # (weights version, onnxruntime session)
    return module


def _tensors(module: Any) -> list[Any]:
    # parameters and buffers straight from the modules: state_dict() would build (and detach)
    # a whole ordered dict on every inference call
    return [*module.parameters(), *module.buffers()]


def _eligible(module: Any, args: tuple[Any, ...]) -> bool:
    import torch

    if module.training or torch.is_grad_enabled() or torch.jit.is_tracing() or \
            torch.compiler.is_compiling():
        return False
    return all(isinstance(a, torch.Tensor) and a.device.type == "cpu" and
               a.dtype == torch.float32 for a in args) and \
        all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.int64)
            for t in _tensors(module))


def _weights_version(module: Any) -> tuple:
    return tuple((id(t), t._version) for t in _tensors(module))


def _session(module: Any) -> Any:
    import torch

    from attncc.api import to_onnx
    from attncc.backends.ort import session

    version = _weights_version(module)
    cached = module._auto_session
    if cached is None or cached[0] != version:
        sess = session(to_onnx(module), threads=torch.get_num_threads())
        module._auto_session = cached = (version, sess)
    return cached[1]


def _choose(module: Any, args: tuple[Any, ...]) -> Choice:
    """Time both backends on these inputs; the PyTorch forward wins ties and failures."""
    base = type(module).__mro__[1]

    def run_torch() -> Any:
        return base.forward(module, *args)

    try:
        sess = _session(module)
        feed = {n: a.numpy() for n, a in zip(module._auto_inputs(), args, strict=True)}

        def run_ort() -> Any:
            return sess.run(None, feed)
    except Exception as err:  # no ONNX path for this block: stay with torch
        return Choice("torch", _best(run_torch), None, f"onnxruntime unavailable: {err}"[:200])
    t_ms, o_ms = _best_pair(run_torch, run_ort)
    return Choice("onnxruntime" if o_ms < t_ms else "torch", t_ms, o_ms)


def _best(fn: Any) -> float:
    fn()
    best = float("inf")
    for _ in range(TRIALS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _best_pair(a: Any, b: Any) -> tuple[float, float]:
    """Best-of-TRIALS ms of a and b, interleaved so drift hits both alike."""
    a()
    b()
    ta = tb = float("inf")
    for _ in range(TRIALS):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta, tb = min(ta, t1 - t0), min(tb, t2 - t1)
    return ta * 1e3, tb * 1e3
