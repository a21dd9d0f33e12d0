"""run_pipeline: order, disable/until/opt_level, requires, fixed points and failure kinds."""

from __future__ import annotations

import pytest

from attncc import passes
from attncc.diagnostics import AttnccError, InternalError, ShapeError
from attncc.passes import MAX_CLEANUP_ROUNDS, PASSES, PIPELINE, Pass, plan, run_pipeline

# a duplicate (cse), a dead statement (dce) and a broadcast (canonicalize)
SPEC = """block B(x: [N, C, H, W], r: int = 2) {
  layer mlp = seq(dense(C -> C // r), relu, dense(C // r -> C))
  squeeze z = mean(x, over=H W)
  excite  s = sigmoid(mlp(z) + mlp(z))
          unused = tanh(x)
  gate    y = x * s
  attention s
  return y
}"""


def test_pipeline_order():
    assert PIPELINE == ("validate", "infer-shapes", "cse", "dce", "attend", "batch",
                        "algebra", "canonicalize", "inplace")
    assert set(PIPELINE) == set(PASSES)


def test_full_pipeline(spec_ir, ref, same_outputs, nodes):
    ir = spec_ir(SPEC)
    n_before = nodes(ir)
    changed = run_pipeline(ir)
    assert changed == ["cse", "dce", "canonicalize", "inplace"]
    # cse: -3 (mlp's second application); dce: -1 (tanh); canonicalize: +1 (align);
    # inplace marks the relu (its dense output is dead after it) and changes no node count
    assert nodes(ir) - n_before == -3
    ir.lint()
    o0 = spec_ir(SPEC)
    run_pipeline(o0, opt_level=0)
    same_outputs(ref(o0), ref(ir))


def test_opt_level_0_skips_cleanup(spec_ir, nodes):
    ir = spec_ir(SPEC)
    n_before = nodes(ir)
    assert run_pipeline(ir, opt_level=0) == ["canonicalize"]
    assert nodes(ir) - n_before == 1
    assert nodes(ir, "tanh") == 1


@pytest.mark.parametrize(("disable", "changed", "delta"), [
    # without cse, batch runs mlp's second dense layers (inputs: two equal relus) as one
    pytest.param({"cse"}, ["dce", "batch", "canonicalize", "inplace"], 2, id="cse"),
    pytest.param({"dce"}, ["cse", "canonicalize", "inplace"], -2, id="dce"),
    pytest.param({"cse", "dce"}, ["batch", "canonicalize", "inplace"], 3, id="cse-dce"),
    pytest.param({"canonicalize"}, ["cse", "dce", "inplace"], -4, id="canonicalize"),
    pytest.param({"inplace"}, ["cse", "dce", "canonicalize"], -3, id="inplace"),
])
def test_disable(spec_ir, nodes, disable, changed, delta):
    ir = spec_ir(SPEC)
    n_before = nodes(ir)
    assert run_pipeline(ir, disable=disable) == changed
    assert nodes(ir) - n_before == delta


@pytest.mark.parametrize(("until", "ran"), [
    pytest.param("validate", ["validate"], id="validate"),
    pytest.param("infer-shapes", ["validate", "infer-shapes"], id="infer-shapes"),
    pytest.param("cse", ["validate", "infer-shapes", "cse"], id="cse"),
    pytest.param("canonicalize", list(PIPELINE[:-1]), id="canonicalize"),
])
def test_until(spec_ir, nodes, until, ran):
    assert plan(until=until) == ran
    ir = spec_ir(SPEC)
    run_pipeline(ir, until=until)
    assert (nodes(ir, "align") == 1) == ("canonicalize" in ran)
    assert (nodes(ir, "tanh") == 0) == ("dce" in ran)


@pytest.mark.parametrize(("kwargs", "message", "hint"), [
    pytest.param({"disable": {"csee"}}, "unknown pass `csee`", "did you mean `cse`?",
                 id="disable-typo"),
    pytest.param({"until": "canonicalise"}, "unknown pass `canonicalise`",
                 "did you mean `canonicalize`?", id="until-typo"),
    pytest.param({"until": "cse", "disable": {"cse"}}, "cannot stop after pass `cse`: it is "
                 "disabled", None, id="until-disabled"),
    pytest.param({"until": "dce", "opt_level": 0}, "cannot stop after pass `dce`: it does not "
                 "run at -O0", None, id="until-at-O0"),
    pytest.param({"disable": {"infer-shapes"}}, "pass `cse` needs pass `infer-shapes`, which "
                 "is disabled", "disable `cse` too, or enable `infer-shapes`",
                 id="required-pass-disabled"),
])
def test_user_errors_come_before_any_pass_runs(spec_ir, kwargs, message, hint):
    ir = spec_ir(SPEC)
    dump = ir.dump()
    with pytest.raises(AttnccError, match=message) as info:
        run_pipeline(ir, **kwargs)
    assert not isinstance(info.value, InternalError)
    if hint:
        assert hint in info.value.diagnostics[0].hints
    assert ir.dump() == dump


def test_pipeline_order_breaking_requires_is_internal(monkeypatch, spec_ir):
    monkeypatch.setattr(passes, "PIPELINE", ("validate", "cse", "infer-shapes"))
    with pytest.raises(InternalError, match="pass 'cse' requires 'infer-shapes' to run first"):
        run_pipeline(spec_ir(SPEC))


def test_shape_error_propagates_unchanged(spec_ir):
    ir = spec_ir(SPEC)
    (z,) = [n for n in ir.graph.nodes if ir.node(n).name == "z"]
    ir.node(z).attrs["over"] = ("Q",)
    with pytest.raises(ShapeError, match="mean reduces `Q`") as info:
        run_pipeline(ir)
    assert info.value.diagnostics[0].span == ir.node(z).span


# ---- the machinery, on stand-in passes ----
def _install(monkeypatch, *fakes: Pass) -> None:
    monkeypatch.setattr(passes, "PIPELINE", ("validate", *(p.name for p in fakes)))
    for p in fakes:
        monkeypatch.setitem(PASSES, p.name, p)


def _counting(name: str, changes: int, calls: list[str], cleanup: bool = True) -> Pass:
    """A pass that reports a change on its first `changes` calls."""

    def fn(ir):
        calls.append(name)
        return calls.count(name) <= changes

    return Pass(name, fn, cleanup=cleanup)


def test_cleanup_group_runs_to_a_fixed_point(monkeypatch, spec_ir):
    calls: list[str] = []
    _install(monkeypatch, _counting("a", 2, calls), _counting("b", 1, calls))
    assert run_pipeline(spec_ir(SPEC)) == ["a", "b"]
    # rounds: (a, b) change; (a, b): a changes; (a, b): nothing changes -> stop
    assert calls == ["a", "b", "a", "b", "a", "b"]


def test_cleanup_group_stops_at_the_round_limit(monkeypatch, spec_ir):
    calls: list[str] = []
    _install(monkeypatch, _counting("a", 10**6, calls), _counting("b", 0, calls))
    run_pipeline(spec_ir(SPEC))
    assert calls.count("a") == calls.count("b") == MAX_CLEANUP_ROUNDS


def test_non_cleanup_pass_runs_once(monkeypatch, spec_ir):
    calls: list[str] = []
    _install(monkeypatch, _counting("a", 10**6, calls, cleanup=False))
    assert run_pipeline(spec_ir(SPEC)) == ["a"]
    assert calls == ["a"]


def test_crash_in_a_pass_is_wrapped_as_internal(monkeypatch, spec_ir):
    def boom(ir):
        raise ValueError("oops")

    _install(monkeypatch, Pass("boom", boom))
    with pytest.raises(InternalError, match=r"pass 'boom' failed after \['validate'\]") as info:
        run_pipeline(spec_ir(SPEC))
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("check_each", [True, False], ids=["checked", "unchecked"])
def test_lint_after_each_pass_or_once_at_the_end(monkeypatch, spec_ir, check_each):
    ran = []

    def make_cycle(ir):
        a, b = ir.topo()[:2]
        ir.graph.add_edge(b, a, key=99)
        return True

    def after(ir):
        ran.append("after")
        return False

    _install(monkeypatch, Pass("breaks", make_cycle), Pass("after", after))
    with pytest.raises(InternalError, match="has a cycle"):
        run_pipeline(spec_ir(SPEC), check_each=check_each)
    # checked: the pass that broke the IR is named at once; unchecked: the end catches it
    assert ran == ([] if check_each else ["after"])


def test_pass_names_are_unique():
    with pytest.raises(ValueError, match="registered twice"):
        passes.ir_pass("cse")(lambda ir: False)
