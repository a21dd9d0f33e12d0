"""Every registered op is complete (signature docstring, facets, samples); no duplicate names."""

from __future__ import annotations

import pytest

from attncc.diagnostics import NameError_
from attncc.ops import Op, all_ops, get_op, user_ops
from attncc.ops import base as ops_base
from attncc.ops.base import DuplicateOpError, register

OPS = [pytest.param(op, id=name) for name, op in sorted(all_ops().items())]
# every op must define these itself: the Op base only raises NotImplementedError
FACETS = ("infer", "numpy", "torch", "onnx", "cost")


def test_registry_is_not_empty():
    assert len(all_ops()) >= 10


@pytest.mark.parametrize("op", OPS)
def test_docstring_starts_with_signature(op: Op):
    doc = type(op).__doc__  # not inspect.getdoc: a docstring inherited from a family won't do
    assert doc, f"op `{op.name}` ({type(op).__name__}) has no docstring"
    first = doc.strip().splitlines()[0]
    assert first.startswith(f"{op.name}("), (
        f"the first docstring line of `{op.name}` should be its DSL signature, got {first!r}")


@pytest.mark.parametrize("facet", FACETS)
@pytest.mark.parametrize("op", OPS)
def test_implements_facet(op: Op, facet: str):
    assert getattr(type(op), facet) is not getattr(Op, facet), (
        f"op `{op.name}` does not implement `{facet}`")


@pytest.mark.parametrize("op", OPS)
def test_params_facet_matches_trait(op: Op):
    # has_params is what CSE and codegen rely on; it must agree with the params facet
    overrides = type(op).params is not Op.params
    assert overrides == ("has_params" in op.traits), (
        f"op `{op.name}`: has_params trait {'has_params' in op.traits}, params facet "
        f"{'defined' if overrides else 'missing'}")


@pytest.mark.parametrize("op", OPS)
def test_has_samples_fitting_its_signature(op: Op):
    samples = op.samples()
    assert samples, f"op `{op.name}` has no samples() for the differential test"
    sig = op.signature
    for s in samples:
        if sig.variadic:
            assert len(s.inputs) >= 1
        else:
            n_min = len(sig.tensors) - len(sig.optional)
            assert n_min <= len(s.inputs) <= len(sig.tensors), f"{op.name}: sample {s} inputs"
        assert set(s.attrs) <= set(sig.attrs), f"{op.name}: sample {s} has unknown attributes"
        required = {k for k, a in sig.attrs.items() if a.required}
        assert required <= set(s.attrs), f"{op.name}: sample {s} lacks {required - set(s.attrs)}"


@pytest.mark.parametrize("op", OPS)
def test_internal_ops_are_not_user_ops(op: Op):
    assert (op.name in user_ops()) == ("internal" not in op.traits)


def test_get_op_returns_the_registered_instance():
    assert get_op("mean") is all_ops()["mean"]


def test_duplicate_name_raises(monkeypatch):
    monkeypatch.setattr(ops_base, "_REGISTRY", dict(ops_base._REGISTRY))
    before = ops_base._REGISTRY["mean"]

    class Mean2(Op):
        """mean(x) -> x.  A second op claiming a taken name."""

        name = "mean"

    with pytest.raises(DuplicateOpError, match="`mean`"):
        register(Mean2)
    assert ops_base._REGISTRY["mean"] is before


def test_register_adds_a_new_name(monkeypatch):
    monkeypatch.setattr(ops_base, "_REGISTRY", dict(ops_base._REGISTRY))

    class Fresh(Op):
        """fresh(x) -> x."""

        name = "fresh_test_op"

    assert register(Fresh) is Fresh
    assert isinstance(get_op("fresh_test_op"), Fresh)
    assert "fresh_test_op" in user_ops()


@pytest.mark.parametrize(("typo", "suggestion"), [
    pytest.param("meen", "mean", id="meen"),
    pytest.param("sigmod", "sigmoid", id="sigmod"),
    pytest.param("batchnorm", "batch_norm", id="batchnorm"),
])
def test_unknown_op_gives_did_you_mean(typo: str, suggestion: str):
    with pytest.raises(NameError_, match=f"unknown op `{typo}`") as info:
        get_op(typo)
    hints = info.value.diagnostics[0].hints
    assert any("did you mean" in h and f"`{suggestion}`" in h for h in hints), hints


def test_unknown_op_hints_never_suggest_internal_ops():
    with pytest.raises(NameError_) as info:
        get_op("alig")
    assert not any("`align`" in h for h in info.value.diagnostics[0].hints)
