"""Fixtures for pass tests: IRs from inline specs, and the NumPy reference on fixed values."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from attncc.backends import numpy_ref
from attncc.elaborate import elaborate
from attncc.ir import IR
from attncc.passes import run_pipeline

# run-time dims get distinct sizes (C is usually fixed at 6 by spec_ir)
RUNTIME_SIZES = {"N": 2, "C": 6, "H": 5, "W": 7, "T": 3}


class Reference:
    """The NumPy reference on values keyed by input and parameter name.

    Values are drawn once per name, so runs before and after a pass see the same inputs and
    weights even when the pass drops parameters (dce) or nodes (cse).
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.values: dict[str, np.ndarray] = {}

    def _value(self, name: str, shape: tuple[int, ...], kind: str) -> np.ndarray:
        if name not in self.values:
            if kind == "int64":
                v = np.zeros(shape, dtype=np.int64)
            elif kind == "positive":  # variances, scales
                v = self.rng.uniform(0.5, 1.5, shape).astype(np.float32)
            else:
                v = self.rng.standard_normal(shape, dtype=np.float32)
            self.values[name] = v
        assert self.values[name].shape == shape, f"`{name}` changed shape across the pass"
        return self.values[name]

    def inputs(self, ir: IR) -> dict[str, np.ndarray]:
        return {ir.node(n).name: self._value(ir.node(n).name,
                                             ir.shape(ir.node(n).out, RUNTIME_SIZES), "normal")
                for n in ir.inputs}

    def params(self, ir: IR) -> dict[str, np.ndarray]:
        out = {}
        for n in ir.params():
            nd = ir.node(n)
            spec = nd.param
            kind = ("int64" if spec.dtype == "int64" else
                    "positive" if spec.init == "ones" else "normal")
            out[nd.name] = self._value(nd.name, spec.shape, kind)
        return out

    def __call__(self, ir: IR) -> dict[str, np.ndarray]:
        return numpy_ref.run(ir, self.inputs(ir), self.params(ir))


@pytest.fixture
def ref() -> Reference:
    return Reference()


@pytest.fixture
def spec_ir() -> Callable[..., IR]:
    """`spec_ir(text, until=..., disable=..., C=6, ...)`: elaborate, then maybe run passes.

    With neither `until` nor `disable`, the IR is as elaboration made it: no pass has run.
    C is bound to 6 when an input declares it (dense needs its size); other dims stay
    run-time dims, sized by the Reference.
    """

    def make(text: str, *, until: str | None = None, disable: tuple[str, ...] = (),
             **hyper) -> IR:
        fixed = {"C": 6} if re.search(r"\[[^\]]*\bC\b", text) else {}
        ir = elaborate(text, hyper_values={**fixed, **hyper})
        if until is not None or disable:
            run_pipeline(ir, until=until, disable=disable)
        return ir

    return make


def assert_same_outputs(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    assert set(before) == set(after)
    for k, want in before.items():
        np.testing.assert_allclose(after[k], want, rtol=1e-6, atol=1e-6, err_msg=k)


@pytest.fixture
def same_outputs() -> Callable[[dict, dict], None]:
    return assert_same_outputs


def count(ir: IR, op: str | None = None) -> int:
    return sum(1 for n in ir.graph.nodes if op is None or ir.node(n).op == op)


@pytest.fixture
def nodes() -> Callable[..., int]:
    """`nodes(ir)` counts every node; `nodes(ir, "align")` the nodes of one op."""
    return count
