"""No code execution from a spec: hostile names, hostile paths, hostile values.

A spec is data. Names in it become Python identifiers, attribute paths and comments of the
generated module; `use` paths name files; hyperparameter expressions are evaluated. Here each
of those is attacked: every hostile name in every position must compile to a module that runs
and computes what the same spec with a plain name computes (or get a clean diagnostic with a
span), and no attack may create the sentinel file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import attncc
from attncc import cli
from attncc.backends.torch_codegen import _module_attrs
from attncc.diagnostics import AttnccError, HyperparameterError, NameError_, ParseError
from attncc.hyper import FUNCTIONS
from attncc.ops import all_ops

# Python keywords and soft keywords, builtins, dunders, names the generated module itself uses
# (torch, F, math, self, forward's argument, its methods and attributes), torch.nn.Module's
# attributes, and names the generated code derives (t, t_1, x)
HOSTILE = [
    "__import__", "__class__", "__init__", "__dict__", "__builtins__", "__globals__",
    "__getattr__", "__name__", "__file__", "__spec__", "_", "__",
    "class", "lambda", "None", "True", "False", "import", "from", "def", "return", "yield",
    "await", "async", "global", "nonlocal", "del", "pass", "raise", "try", "with", "assert",
    "if", "else", "for", "while", "in", "is", "not", "and", "or", "match", "case", "type",
    "exec", "eval", "compile", "open", "print", "input", "getattr", "setattr", "globals",
    "locals", "vars", "breakpoint", "exit", "quit", "object", "int", "float", "str",
    "torch", "F", "math", "self", "super", "os", "sys", "builtins", "subprocess", "nn",
    "forward", "training", "reset_parameters", "attention_names", "attention_maps",
    "return_attention", "state_dict", "load_state_dict", "_parameters", "_modules",
    "_buffers", "register_buffer", "add_module", "parameters", "cuda", "to", "half",
    "ir", "spec", "source", "weight", "bias", "x", "t", "t_1", "y", "Module", "attncc",
]
assert len(HOSTILE) == len(set(HOSTILE))
# the language's own keywords: a parse error wherever a name is expected
KEYWORDS = {"block", "use", "layer", "param", "dim", "example", "preset", "attention",
            "return", "repeat", "as", "true", "false"}

# each template uses the name `{n}` in one position; `plain` is what `{n}` becomes for the
# reference run
TEMPLATES = {
    "block": "block {n}(x: [N, C]) {{ y = sigmoid(x)\n return y }}",
    "input": "block B({n}: [N, C]) {{ y = sigmoid({n}) * {n}\n return y }}",
    "tensor": "block B(x: [N, C]) {{ {n} = sigmoid(x)\n y = {n} * x\n attention {n}\n"
              " return y }}",
    "output": "block B(x: [N, C]) {{ {n} = sigmoid(x) * x\n return {n} }}",
    "layer": "block B(x: [N, C]) {{ layer {n} = dense(C -> C)\n y = {n}(x)\n return y }}",
    "seq-layer": "block B(x: [N, C]) {{ layer {n} = seq(dense(C -> C), relu, dense(C -> C))\n"
                 " y = {n}(x)\n return y }}",
    "param": "block B(x: [N, C]) {{ param {n}: [C] = ones\n y = x * {n}\n return y }}",
    "dim": "block B(x: [N, {n}]) {{ y = softmax(x, over={n})\n z = dense(y, {n} -> {n})\n"
           " return z }}",
    "hyper": "block B(x: [N, C], {n}: int = 2) {{ dim M = C // {n}\n"
             " y = dense(x, C -> M)\n return y }}",
    "stage": "block B(x: [N, C]) {{ {n} y = sigmoid(x)\n return y }}",
    "sub-block": "block {n}(x: [N, C]) {{ return relu(x) }}\nblock B(x: [N, C]) {{ y = {n}(x)\n"
                 " layer l = dense(C -> C)\n z = l(y)\n return z }}",
    "block-arg": "block S(x: [N, C], {n}: int = 1) {{ return relu(x) * {n} }}\n"
                 "block B(x: [N, C]) {{ y = S(x, {n}=3)\n return y }}",
    "preset": "block B(x: [N, C], r: int = 2) {{ preset {n}(r = 4)\n return relu(x) }}",
}


def _run(text: str):
    x = torch.linspace(-2, 2, 12).reshape(2, 6)
    m = attncc.compile(text, example=x, seed=0)  # C (or the hostile dim) = 6 from x
    return m, m(x)


@pytest.fixture(autouse=True)
def _sentinel(tmp_path, monkeypatch):
    """Every test runs in a fresh folder; the attacks try to create SENTINEL in it."""
    monkeypatch.chdir(tmp_path)
    yield
    assert not (tmp_path / "SENTINEL").exists(), "a spec ran code"


@pytest.mark.parametrize("where", TEMPLATES)
def test_hostile_names_compile_run_and_compute_the_same(where):
    _, want = _run(TEMPLATES[where].format(n="plain"))
    ran, refused = [], []
    taken = set(re.findall(r"[A-Za-z_]\w*", TEMPLATES[where].replace("{n}", " ")))
    for name in HOSTILE:
        if name in taken:  # `y = ...` twice is a different error
            continue
        text = TEMPLATES[where].format(n=name)
        try:
            m, got = _run(text)
        except AttnccError as err:
            # a clean refusal: a diagnostic pointing into the spec, never another exception
            d = err.diagnostics[0]
            assert d.span is not None and d.span.line >= 1, (name, d.message)
            assert name in d.message or (name in KEYWORDS and isinstance(err, ParseError)), (
                name, d.message)
            refused.append(name)
            continue
        torch.testing.assert_close(got, want, msg=f"{where} named {name!r}")
        # the generated source stands alone: compile it into a fresh namespace and run it
        ns: dict = {}
        exec(compile(m.source, "<generated>", "exec"), ns)
        fresh = ns[type(m).__name__]()
        fresh.load_state_dict(m.state_dict())
        torch.testing.assert_close(fresh(torch.linspace(-2, 2, 12).reshape(2, 6)), want)
        ran.append(name)
    # refused may be only: names of the language's functions and ops (where a callable is
    # named), and torch.nn.Module attributes as the attribute paths of parameters
    allowed = set(FUNCTIONS) | set(all_ops()) | KEYWORDS
    if where in ("layer", "seq-layer", "param"):
        allowed |= _module_attrs()
    assert set(refused) <= allowed, f"{where}: refused {sorted(set(refused) - allowed)}"
    assert len(ran) >= len(HOSTILE) // 2


def test_layers_named_like_keywords_keep_their_names_in_the_state_dict():
    m, _ = _run("block B(x: [N, C]) { layer class = dense(C -> C)\n return class(x) }")
    assert set(m.state_dict()) == {"class.weight", "class.bias"}
    m, _ = _run("block B(x: [N, C]) { layer lambda = seq(dense(C -> C), relu, dense(C -> C))\n"
                " return lambda(x) }")
    assert set(m.state_dict()) == {"lambda.0.weight", "lambda.0.bias", "lambda.2.weight",
                                   "lambda.2.bias"}


@pytest.mark.parametrize("name", ["forward", "reset_parameters", "attention_maps", "__dict__",
                                  "training", "ir"])
def test_a_layer_shadowing_a_module_attribute_is_refused_at_its_name(name):
    text = f"block B(x: [N, C]) {{\n  layer {name} = dense(C -> C)\n  return {name}(x)\n}}"
    with pytest.raises(AttnccError) as exc:
        attncc.compile(text, C=6)
    (d,) = exc.value.diagnostics
    assert d.message.startswith(f"`{name}` cannot be used as a name")
    assert d.span.line == 3


# names that are not identifiers cannot be written at all: the lexer stops at them
NOT_NAMES = ['a"b', "a'b", "a\nb", "a b", "a.b", "a-b", "é", "a\\b", "a\x00b", "1a",
             "__import__('os').system('touch SENTINEL')", "x;import os", "a`b", "a$b",
             "os.system", "a\u2028b", "ｘ"]


@pytest.mark.parametrize("name", NOT_NAMES, ids=lambda s: repr(s)[1:-1][:24])
@pytest.mark.parametrize("where", ["block", "layer", "tensor", "dim", "param"])
def test_names_that_are_not_identifiers_are_syntax_errors(name, where):
    text = TEMPLATES[where].format(n=name)
    with pytest.raises(AttnccError) as exc:
        attncc.compile(text, C=6)
    d = exc.value.diagnostics[0]
    assert isinstance(exc.value, ParseError) or d.span is not None, d.message


# ---- hyperparameters are evaluated, never executed ----
@pytest.mark.parametrize("expr", [
    '__import__("os").system("touch SENTINEL")',
    "__import__(1)",
    'eval("1")',
    'exec("open(\'SENTINEL\', \'w\')")',
    'open("SENTINEL", "w")',
    "().__class__.__bases__[0]",
    "lambda: 1",
    "[c for c in ()]",
    "x if 1 else 2",
    "C.__class__",
    "getattr(C, 1)",
    "compile(1, 2, 3)",
    "globals()",
])
def test_hyperparameter_expressions_never_run_python(expr):
    text = f"block B(x: [N, C]) {{\n  dim K = {expr}\n  return x\n}}"
    with pytest.raises(AttnccError):
        attncc.compile(text, C=4)


def test_api_and_cli_values_are_literals_only(capsys):
    with pytest.raises(HyperparameterError):
        attncc.check("se", **{"__import__('os').system('touch SENTINEL')": 1})
    with pytest.raises(HyperparameterError):
        attncc.check("se", C="__import__('os')")
    assert cli.main(["check", "se", "--set", "C=__import__('os').system('touch SENTINEL')"]) == 1
    assert cli.main(["check", "se", "--set", "__import__('os')=1"]) == 2
    assert cli.main(["check", "se", "--shape", "x=__import__('os')"]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ---- `use` reads only inside the spec's folder and the library ----
@pytest.fixture
def spec_dir(tmp_path):
    inside = tmp_path / "specs"
    inside.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.attn").write_text("block Secret(x: [N]) { return x }\n")
    (inside / "link.attn").symlink_to(outside / "secret.attn")
    (inside / "linkdir").symlink_to(outside, target_is_directory=True)
    (inside / "dev.attn").symlink_to("/dev/zero")
    (inside / "ok.attn").write_text("block Ok(x: [N]) { return relu(x) }\n")
    return inside


@pytest.mark.parametrize("target", [
    "../../etc/passwd", "../outside/secret.attn", "/etc/passwd", "/dev/zero",
    str(Path("/proc/self/environ")), "link.attn", "linkdir/secret.attn", "dev.attn",
    "./../outside/secret.attn", "linkdir/../specs/../outside/secret.attn",
    "../attncc/hyper.py", "../../../../../../../../etc/shadow",
])
def test_use_never_leaves_the_folder_or_the_library(spec_dir, target):
    main = spec_dir / "main.attn"
    main.write_text(f'use "{target}"\nblock Main(x: [N]) {{ return x }}\n')
    with pytest.raises(NameError_) as exc:
        attncc.check(main)
    (d,) = exc.value.diagnostics
    assert d.message in (f"`use` path `{target}` leaves the spec's folder",
                         f"cannot find `{target}`")
    assert (d.span.line, d.span.col) == (1, 5)
    assert "Secret" not in str(exc.value)


def test_use_inside_the_folder_and_from_the_library_still_works(spec_dir):
    main = spec_dir / "main.attn"
    (spec_dir / "ok4.attn").write_text("block Ok4(x: [N, C, H, W]) { return relu(x) }\n")
    main.write_text('use "ok4.attn"\nuse "se.attn"\n'
                    "block Main(x: [N, C, H, W]) { return SE(Ok4(x)) }\n")
    assert attncc.check(main, C=64).parameter_count() == 580


@pytest.mark.parametrize("path", ["a\x00b.attn", "a\nb.attn", "a\x1bb.attn"],
                         ids=["nul", "newline", "escape"])
def test_unprintable_use_paths_are_diagnostics(spec_dir, path):
    main = spec_dir / "main.attn"
    main.write_text(f'use "{path}"\nblock Main(x: [N]) {{ return x }}\n')
    with pytest.raises(AttnccError) as exc:  # was ValueError: embedded null byte
        attncc.check(main)
    assert exc.value.diagnostics[0].span.line == 1


# ---- the spec's file name goes into comments of the generated code ----
@pytest.mark.parametrize("name", [
    "a\nimport pathlib; pathlib.Path('SENTINEL').touch()\n#.attn",
    "a\rimport pathlib; pathlib.Path('SENTINEL').touch()\r#.attn",
    'a"""\nimport pathlib; pathlib.Path("SENTINEL").touch()\n""".attn',
], ids=["newline", "carriage-return", "triple-quote"])
def test_a_hostile_file_name_cannot_inject_code(tmp_path, name, capsys):
    spec = tmp_path / name
    spec.write_text("block B(x: [N, C]) {\n  y = sigmoid(x)\n  return y\n}\n")
    m = attncc.compile(spec, C=4)  # builds the module: its source is executed
    assert m(torch.ones(2, 4)).shape == (2, 4)
    code = m.source
    ns: dict = {}
    exec(compile(code, "<generated>", "exec"), ns)  # the attack must have stayed a comment
    assert "\nimport pathlib" not in code and "\rimport pathlib" not in code
    assert not (tmp_path / "SENTINEL").exists()
