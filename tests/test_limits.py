"""Resource limits: absurd sizes, counts and depths are refused before anything is allocated.

Each limit of attncc.limits (params, constant_bytes, intermediate_bytes, repeat, block_depth,
use_depth, nesting, nodes) is tripped once with a diagnostic at its cause, shown to be
settable (API, `using`, ATTNCC_LIMITS, `--limit`), and a block just inside it compiles.
Recursive blocks and `use` cycles are refused with the cycle spelled out.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

import attncc
from attncc import cli, limits
from attncc.compiler import Source, compile_ir
from attncc.diagnostics import AttnccError, CycleError, HyperparameterError, ParseError
from attncc.limits import Limits, ResourceError, using


def _src(text: str) -> Source:
    return Source(text, "<t>")


def _refused(spec, error=ResourceError, **hyper):
    with pytest.raises(error) as exc:
        attncc.check(spec, **hyper)
    return exc.value


# ---- sizes: parameters, constants, intermediates ----
def test_absurd_channel_count_is_refused_without_allocating():
    attncc.check("se", C=64)  # imports and parser tables, outside the measurement
    start = time.thread_time()
    _refused("se", C=10**12 + 1)
    assert time.thread_time() - start < 1.0
    tracemalloc.start()
    try:
        err = _refused("se", C=10**12)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20  # nothing near C elements was ever allocated
    d = err.diagnostics[0]
    assert d.message.startswith("the block has 125,000,000,001,062,500,000,000 parameters, "
                                "more than the limit of 1,000,000,000")
    assert d.span.path.endswith("se.attn") and d.span.line == 33
    assert "`fc1.weight` of shape [62500000000, 1000000000000]" in d.notes[0]
    assert "--limit params=" in d.hints[0]


def test_compile_refuses_before_building_the_module():
    # no MemoryError, no torch allocation: the same diagnostic as check
    with pytest.raises(ResourceError):
        attncc.compile("se", C=10**12)


def test_cli_absurd_size_gives_a_diagnostic_and_exit_1(capsys):
    assert cli.main(["check", "se", "--set", "C=1000000000000"]) == 1
    err = capsys.readouterr().err
    assert "error: the block has" in err and "Traceback" not in err
    # an expression is not a --set value: a diagnostic too, not an evaluation
    assert cli.main(["check", "se", "--set", "C=10**12"]) == 1
    assert "`10**12` is not a number" in capsys.readouterr().err


def test_parameter_limit_is_settable_every_way(monkeypatch, capsys):
    assert attncc.check("se", C=64).parameter_count() == 580
    with using(params=500):
        err = _refused("se", C=64)
        assert "580 parameters, more than the limit of 500" in err.diagnostics[0].message
    attncc.check("se", C=64)  # the cache does not hide a changed limit
    limits.set_limits(params=100)
    try:
        _refused("se", C=64)
    finally:
        limits.reset_limits()
    monkeypatch.setenv("ATTNCC_LIMITS", "params=5e2")
    _refused("se", C=64)
    assert cli.main(["check", "se", "--set", "C=64", "--limit", "params=1e3"]) == 0
    monkeypatch.delenv("ATTNCC_LIMITS")
    assert cli.main(["check", "se", "--set", "C=64", "--limit", "params=579"]) == 1
    assert "more than the limit of 579" in capsys.readouterr().err


def test_constant_limit_points_at_the_constant():
    # FcaNet's DCT basis is a [C, H, W] buffer
    err = _refused("fcanet", C=64, H=70_000, W=70_000)
    d = err.diagnostics[0]
    assert d.message.startswith("the block's constants take 1.14 TiB, more than the limit of "
                                "2 GiB")
    assert "dct2d" in err.sources[d.span.path].split("\n")[d.span.line - 1]
    with using(constant_bytes=10 * 2**20):
        attncc.check("fcanet", C=64, H=112, W=112)  # 3.1 MiB
        with pytest.raises(ResourceError):
            attncc.check("fcanet", C=64, H=224, W=224)  # 12.3 MiB


def test_intermediate_limit_at_the_requested_shape():
    text = ("block B(x: [N, C, H, W]) {\n  a = softmax(contract(x, x as [N, C, P, Q], over=C),"
            " over=P Q)\n  return a\n}")
    shapes = {"x": (8, 16, 64, 64)}  # a: [N, H, W, P, Q] = 8 * 64**4 * 4 bytes = 512 MiB
    compile_ir(_src(text), {}, shapes)
    with using(intermediate_bytes=256 * 2**20):
        with pytest.raises(ResourceError) as exc:
            compile_ir(_src(text), {}, shapes)
        d = exc.value.diagnostics[0]
        assert d.message.startswith("tensor `a.contract` (`contract`)")
        assert "would take 512 MiB, more than the limit of 256 MiB" in d.message
        assert d.span.line == 2
        assert d.notes == ("its shape: [N=8, H=64, W=64, P=64, Q=64]",)
        # without shapes, run-time dims count 1: a lower bound that refuses nothing that fits
        compile_ir(_src(text), {}, None)
        with pytest.raises(ResourceError) as exc:
            compile_ir(_src(text), {"C": 2**27}, None)
        assert exc.value.diagnostics[0].notes == (
            "its shape: [N, C=134217728, H, W] (dims known only at run time count 1)",)


def test_an_absurd_input_shape_is_refused():
    err = _refused("nonlocal", shapes={"x": (64, 64, 1000, 1000)})
    assert "tensor `x` (input) would take 15.3 GiB" in err.diagnostics[0].message


# ---- work: repeat counts, nodes, depth ----
LOOP = "block B(x: [N, C], s: int = 3) {\n  y = x\n  repeat s { y = relu(y) }\n  return y\n}"


def test_repeat_count_limit():
    d = _refused(LOOP, HyperparameterError, C=4, s=65).diagnostics[0]
    assert d.message == "the count of `repeat` must be at most 64, got 65"
    assert "`--limit repeat=N`" in " ".join(d.hints)
    with using(repeat=100):
        attncc.check(LOOP, C=4, s=65)
    with using(repeat=2):
        _refused(LOOP, HyperparameterError, C=4, s=3)


@pytest.mark.parametrize("text", [
    "block B(x: [N, C]) {\n  y = x\n  repeat 64 { repeat 64 { repeat 64 { y = relu(y) } } }\n"
    "  return y\n}",
    "".join(f"block B{i}(x: [N, C]) {{ return B{i + 1}(B{i + 1}(x)) }}\n" for i in range(30))
    + "block B30(x: [N, C]) { return relu(x) }\nblock Main(x: [N, C]) { return B0(x) }",
], ids=["nested-repeat", "doubling-block-calls"])
def test_graphs_that_multiply_are_refused_quickly(text):
    start = time.thread_time()
    d = _refused(text, C=4).diagnostics[0]
    assert d.message == "the block grows to more than 4096 graph nodes here"
    assert time.thread_time() - start < 1.5


def test_node_limit_is_settable():
    text = "block B(x: [N, C]) {\n  y = x\n  repeat 50 { repeat 50 { y = relu(y) } }\n  return y\n}"
    assert attncc.check(text, C=4).graph.number_of_nodes() == 2501
    with using(nodes=1000):
        _refused(text, C=5)


def test_block_depth_limit_spells_out_the_chain():
    chain = "".join(f"block B{i}(x: [N, C]) {{ return B{i + 1}(x) }}\n" for i in range(40))
    text = chain + "block B40(x: [N, C]) { return relu(x) }\nblock Main(x: [N, C]) { return B0(x) }"
    d = _refused(text, CycleError, C=4).diagnostics[0]
    assert d.message.startswith("blocks nested deeper than 32: Main -> B0 -> B1 -> ")
    assert d.message.endswith("-> B30 -> B31")
    with using(block_depth=50):
        attncc.check(text, C=4)


def test_recursive_blocks_spell_out_the_cycle():
    text = ("block A(x: [N, C]) { return B(x) }\nblock B(x: [N, C]) { return Cc(relu(x)) }\n"
            "block Cc(x: [N, C]) { return A(x) }\nblock Main(x: [N, C]) { return A(x) }")
    d = _refused(text, CycleError, C=4).diagnostics[0]
    assert d.message == "block `A` calls itself: Main -> A -> B -> Cc -> A"
    assert (d.span.line, d.span.col) == (3, 30)
    d = _refused("block R(x: [N, C]) { return R(x) }", CycleError, C=4).diagnostics[0]
    assert d.message == "block `R` calls itself: R -> R"


def test_use_cycles_and_depth(tmp_path):
    (tmp_path / "a.attn").write_text('use "b.attn"\nblock A(x: [N]) { return x }\n')
    (tmp_path / "b.attn").write_text('use "sub/c.attn"\nblock Bb(x: [N]) { return x }\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.attn").write_text('use "../a.attn"\nblock Cc(x: [N]) { return x }\n')
    d = _refused(tmp_path / "a.attn", CycleError).diagnostics[0]
    assert d.message == "`use` cycle: a.attn -> b.attn -> sub/c.attn -> a.attn"
    assert (d.span.path, d.span.line, d.span.col) == (str(tmp_path / "sub" / "c.attn"), 1, 5)
    # a chain of 20 files: deeper than use_depth=16, fine under 32
    for i in range(20):
        (tmp_path / f"f{i}.attn").write_text(
            f'use "f{i + 1}.attn"\nblock F{i}(x: [N]) {{ return x }}\n')
    (tmp_path / "f20.attn").write_text("block F20(x: [N]) { return x }\n")
    d = _refused(tmp_path / "f0.attn", CycleError).diagnostics[0]
    assert d.message.startswith("`use` nested deeper than 16 files: f0.attn -> f1.attn -> ")
    with using(use_depth=32):
        attncc.check(tmp_path / "f0.attn", block="F0")


def test_nesting_limit_is_a_parse_error():
    text = "block B(x: [N, C]) {\n  y = " + "-" * 200 + "x\n  return y\n}"
    d = _refused(text, ParseError).diagnostics[0]
    assert d.message == "the syntax is nested more than 100 levels deep here"
    with using(nesting=300):
        attncc.check(text, C=4)


# ---- the settings themselves ----
def test_limit_values_and_names():
    assert limits.parse_value("1e9") == 10**9
    assert limits.parse_value("2GiB") == 2 * 2**30
    assert limits.parse_value("500MB") == 500 * 10**6
    assert limits.parse_settings("params=1e3, repeat=8") == {"params": 1000, "repeat": 8}
    assert Limits().replace(nodes=10).nodes == 10
    assert attncc.limits.Limits is Limits  # reachable as attncc.limits after `import attncc`
    with pytest.raises(AttnccError, match="no limit named `param`") as exc:
        limits.parse_settings("param=1")
    assert "did you mean `params`" in exc.value.diagnostics[0].hints[0]
    for bad in ("x", "-1", "1e999", "3 parsecs"):
        with pytest.raises(AttnccError):
            limits.parse_value(bad)
    with pytest.raises(AttnccError):
        Limits().replace(repeat=-1)


def test_a_bad_environment_variable_is_a_diagnostic(monkeypatch, capsys):
    monkeypatch.setenv("ATTNCC_LIMITS", "params=lots")
    assert cli.main(["check", "se", "--set", "C=64"]) == 1
    assert "ATTNCC_LIMITS: `lots` is not a limit value" in capsys.readouterr().err


def test_the_defaults_leave_every_bundled_spec_room():
    from attncc.compiler import example_shapes, read_source
    from attncc.library import spec_paths

    worst = {"nodes": 0, "params": 0}
    for path in spec_paths():
        src = read_source(path)
        try:
            ir = compile_ir(src, {}, example_shapes(src) or None)
        except ResourceError as err:  # pragma: no cover - the failure this test looks for
            pytest.fail(f"{path.name}: {err}")
        except AttnccError:
            continue  # a spec that needs hyperparameters: its own tests cover it
        worst["nodes"] = max(worst["nodes"], ir.graph.number_of_nodes())
        worst["params"] = max(worst["params"], ir.parameter_count())
    assert worst["nodes"] * 10 < Limits().nodes
    assert worst["params"] * 100 < Limits().params
