"""The grammar and the AST builder: accepted and rejected snippets, spans, and the packaged copy."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from attncc import hyper
from attncc.diagnostics import ParseError, SignatureError, Span
from attncc.elaborate import elaborate
from attncc.ops import all_ops
from attncc.syntax import ast, parse
from attncc.syntax.grammar import grammar_text

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "grammar" / "attn.lark"


# ---- helpers ----
def block_of(body: str, params: str = "x: [N, C, H, W]") -> ast.Block:
    (block,) = parse(f"block B({params}) {{\n{body}\n}}\n", "t.attn").blocks
    return block


def expr_of(text: str) -> ast.Expr:
    """The expression `text`, parsed as the value of `y = text` on line 1 at column 5."""
    (block,) = parse(f"y = {text}".join(["block B(x: [N, C]) {\n", "\n}"]), "t.attn").blocks
    (stmt,) = block.body
    return stmt.value


def sexp(e: ast.Expr) -> str:
    """A fully parenthesised rendering, so precedence and associativity are explicit."""
    match e:
        case ast.Var(name=n):
            return n
        case ast.IntLit(value=v) | ast.FloatLit(value=v):
            return repr(v)
        case ast.StrLit(value=v):
            return f'"{v}"'
        case ast.BoolLit(value=v):
            return str(v).lower()
        case ast.Empty():
            return "()"
        case ast.Neg(operand=o):
            return f"(neg {sexp(o)})"
        case ast.BinOp(op=op, left=a, right=b):
            return f"({op} {sexp(a)} {sexp(b)})"
        case ast.NameSeq(names=ns):
            return "[" + " ".join(n.text for n in ns) + "]"
        case ast.DimMap(src=s, dst=d):
            return f"(map {sexp(s)} {sexp(d)})"
        case ast.Call(func=f, args=args, kwargs=kws):
            parts = [sexp(a) for a in args] + [f"{k.name.text}={sexp(k.value)}" for k in kws]
            return f"(call {f.name} {' '.join(parts)})".replace(" )", ")")
        case ast.Rename(value=v, dims=t):
            return f"(as {sexp(v)} [{' '.join(d.text for d in t.dims)}])"
    raise TypeError(e)


def where(span: Span) -> tuple[int, int, int, int]:
    return span.line, span.col, span.end_line, span.end_col


# ---- accepted: declarations ----
def test_use_declarations_keep_their_path_and_spans():
    module = parse('use "parts.attn"\nuse "lib/gates.attn"  # shared parts\n', "m.attn")
    assert [u.path for u in module.uses] == ["parts.attn", "lib/gates.attn"]
    assert module.blocks == ()
    assert where(module.uses[0].span) == (1, 1, 1, 17)
    assert where(module.uses[1].path_span) == (2, 5, 2, 21)  # the quoted path alone
    assert module.uses[0].span.path == "m.attn"


def test_block_parameters_tensor_scalar_untyped_and_defaults():
    block = block_of("return x", "x: [N, C, H, W], r: int = 16, eps = 1e-5, g, flag: bool = true")
    x, r, eps, g, flag = block.params
    assert isinstance(x.type, ast.TensorTypeAst)
    assert [d.text for d in x.type.dims] == ["N", "C", "H", "W"]
    assert x.default is None
    assert isinstance(r.type, ast.ScalarType) and r.type.name == "int"
    assert r.default == ast.IntLit(16, r.default.span)
    assert eps.type is None and eps.default.value == 1e-5  # untyped, with a default
    assert g.type is None and g.default is None  # untyped, no default: a tensor argument
    assert flag.type.name == "bool" and flag.default.value is True
    # `block B(x: [N, C, H, W], r: int = 16, ...`: columns are 1-based, end one past the end
    assert where(x.span) == (1, 9, 1, 24)
    assert where(x.type.span) == (1, 12, 1, 24)
    assert where(x.type.dims[3].span) == (1, 22, 1, 23)
    assert where(r.span) == (1, 26, 1, 37)
    assert where(block.name.span) == (1, 7, 1, 8)


def test_empty_parameter_list_empty_tensor_type_and_trailing_commas():
    (block,) = parse("block B() { }", "t.attn").blocks
    assert block.params == () and block.body == ()
    block = block_of("return x", "x: [], y: [N, C,], r: int = 2,")
    assert [len(p.type.dims) if p.type else None for p in block.params[:2]] == [0, 2]
    assert len(block.params) == 3


def test_several_blocks_and_uses_in_one_file():
    module = parse('use "a.attn"\nblock A(x) { return x }\nblock B(y) { return y }', "m.attn")
    assert [b.name.text for b in module.blocks] == ["A", "B"]
    assert len(module.uses) == 1


# ---- accepted: statements ----
def test_stage_labelled_assignment():
    (stmt,) = block_of("  squeeze  z = mean(x, over=H W)").body
    assert isinstance(stmt, ast.Assign)
    assert stmt.stage.text == "squeeze" and stmt.target.text == "z"
    assert where(stmt.stage.span) == (2, 3, 2, 10)
    assert where(stmt.target.span) == (2, 12, 2, 13)
    assert where(stmt.span) == (2, 3, 2, 33)
    assert sexp(stmt.value) == "(call mean x over=[H W])"


def test_free_form_stage_names_and_unlabelled_statements():
    body = block_of("aggregate a = relu(x)\nb = relu(a)\nmy_stage_2 c = a").body
    assert [s.stage.text if s.stage else None for s in body] == ["aggregate", None, "my_stage_2"]


def test_stages_are_sticky_until_the_next_label():
    src = """block B(x: [N, C, H, W]) {
      squeeze z = mean(x, over=H W)
      m = relu(z)
      excite  s = sigmoid(m)
      y = x * s
      return y
    }"""
    ir = elaborate(src, "b.attn", hyper_values={"C": 8})
    stage = {ir.node(n).name: ir.node(n).stage for n in ir.graph.nodes}
    assert stage == {"x": None, "z": "squeeze", "m": "squeeze", "s": "excite", "y": "excite"}


def test_layer_declarations_with_and_without_stage():
    first, second = block_of(
        "layer fc1 = dense(C -> C // r)\n"
        "excite layer mlp = seq(dense(C -> C // r), relu, dense(C // r -> C))"
    ).body
    assert isinstance(first, ast.LayerDecl) and first.stage is None
    assert first.target.text == "fc1"
    assert sexp(first.value) == "(call dense (map C (// C r)))"
    assert isinstance(second, ast.LayerDecl) and second.stage.text == "excite"
    # `seq` is an ordinary call to the grammar; the elaborator gives it meaning
    assert sexp(second.value) == (
        "(call seq (call dense (map C (// C r))) relu (call dense (map (// C r) C)))"
    )
    assert where(second.target.span) == (3, 14, 3, 17)


def test_dim_declaration():
    (stmt,) = block_of("dim D = C // 4").body
    assert isinstance(stmt, ast.DimDecl)
    assert stmt.target.text == "D"
    assert sexp(stmt.value) == "(// C 4)"
    assert where(stmt.span) == (2, 1, 2, 15)


def test_attention_with_several_names_and_return_of_several_values():
    attention, ret = block_of("attention s_c, s_s\nreturn y, s_c + 1").body
    assert isinstance(attention, ast.AttentionDecl)
    assert [n.text for n in attention.names] == ["s_c", "s_s"]
    assert where(attention.names[1].span) == (2, 16, 2, 19)
    assert isinstance(ret, ast.Return)
    assert [sexp(v) for v in ret.values] == ["y", "(+ s_c 1)"]
    assert where(ret.span) == (3, 1, 3, 18)


def test_semicolons_separate_statements_on_one_line():
    body = block_of("a = 1; b = 2;; c = a + b ;").body
    assert [s.target.text for s in body] == ["a", "b", "c"]
    assert where(body[1].span) == (2, 8, 2, 13)


def test_comments_are_ignored_everywhere():
    src = """# header
    block B(x: [N, C]) {  # after the brace
      # a whole line
      y = relu(x)  # trailing
      return y # end
    } # done
    # last line without newline"""
    (block,) = parse(src, "t.attn").blocks
    assert [type(s).__name__ for s in block.body] == ["Assign", "Return"]


def test_a_hash_inside_a_string_is_not_a_comment():
    (stmt,) = block_of('y = f(x, mode="a # b")').body
    assert stmt.value.kwargs[0].value.value == "a # b"


def test_multi_line_expressions_keep_multi_line_spans():
    (stmt,) = block_of("s = sigmoid(fc2(relu(\n      fc1(z))))").body
    call = stmt.value
    assert sexp(call) == "(call sigmoid (call fc2 (call relu (call fc1 z))))"
    assert where(call.span) == (2, 5, 3, 16)
    inner = call.args[0].args[0].args[0]
    assert where(inner.span) == (3, 7, 3, 13)


def test_newlines_are_not_significant_between_statements():
    body = block_of("a =\n  relu(\n x\n )\nb = a").body
    assert [s.target.text for s in body] == ["a", "b"]


# ---- accepted: expressions ----
@pytest.mark.parametrize(
    "text, tree",
    [
        ("a + b * c", "(+ a (* b c))"),
        ("(a + b) * c", "(* (+ a b) c)"),
        ("a - b - c", "(- (- a b) c)"),
        ("a / b / c", "(/ (/ a b) c)"),
        ("a // b % c * d", "(* (% (// a b) c) d)"),
        ("a + b // c - d", "(- (+ a (// b c)) d)"),
        ("-a", "(neg a)"),
        ("--a", "(neg (neg a))"),
        ("-a * b", "(* (neg a) b)"),
        ("a * -b", "(* a (neg b))"),
        ("-a ** 2", "(neg (** a 2))"),
        ("a ** -b", "(** a (neg b))"),
        ("2 ** 3 ** 2", "(** 2 (** 3 2))"),
        ("a * b ** c", "(* a (** b c))"),
        ("f(a) ** 2", "(** (call f a) 2)"),
        ("odd(int(abs((log2(C) + b) / gamma)))",
         "(call odd (call int (call abs (/ (+ (call log2 C) b) gamma))))"),
        ("max(a, 2, 3.5)", "(call max a 2 3.5)"),
        ("f()", "(call f)"),
        ("f(x, k=-1, flag=false, name=\"s\")", '(call f x k=(neg 1) flag=false name="s")'),
        ("relu(x) as [N, D]", "(as (call relu x) [N D])"),
        ("a + b as [N]", "(as (+ a b) [N])"),
        ("1.5e-3 + .5 + 2. + 1e3", "(+ (+ (+ 0.0015 0.5) 2.0) 1000.0)"),
        ("true", "true"),
    ],
    ids=str,
)
def test_expression_structure(text, tree):
    assert sexp(expr_of(text)) == tree


@pytest.mark.parametrize(
    "arg, tree",
    [
        ("C -> C // r", "(map C (// C r))"),
        ("C // r -> C", "(map (// C r) C)"),
        ("S -> ()", "(map S ())"),
        ("() -> S", "(map () S)"),
        ("d -> B C", "(map d [B C])"),
        ("H W -> P", "(map [H W] P)"),
        ("C -> 2 * C", "(map C (* 2 C))"),
    ],
    ids=["map-computed", "map-from-computed", "map-to-nothing", "map-from-nothing",
         "map-to-several", "map-from-several", "map-scaled"],
)
def test_dim_maps(arg, tree):
    call = expr_of(f"dense(z, {arg})")
    assert sexp(call.args[1]) == tree


def test_dim_lists_side_by_side():
    call = expr_of("conv(z, S -> (), over=H W, k=k, bias=false)")
    over = call.kwargs[0]
    assert over.name.text == "over"
    assert isinstance(over.value, ast.NameSeq)
    assert [n.text for n in over.value.names] == ["H", "W"]
    # `y = conv(z, S -> (), over=H W, ...` on line 2
    assert where(over.span) == (2, 22, 2, 30)
    assert where(over.value.names[1].span) == (2, 29, 2, 30)
    assert where(call.args[1].dst.span) == (2, 18, 2, 20)  # the `()`
    assert sexp(call) == "(call conv z (map S ()) over=[H W] k=k bias=false)"
    # a single name is a plain `var`; three names are one NameSeq
    assert sexp(expr_of("mean(x, over=C)")) == "(call mean x over=C)"
    assert sexp(expr_of("batch_norm(x, over=N H W)")) == "(call batch_norm x over=[N H W])"


def test_keywords_of_the_language_may_name_keyword_arguments():
    # the contextual lexer: `as`, `dim` or `layer` where only a name fits is a name
    call = expr_of("stack(a, b, as=S, dim=C, layer=2)")
    assert [k.name.text for k in call.kwargs] == ["as", "dim", "layer"]


def test_expression_spans():
    e = expr_of("a + b * c")
    assert where(e.span) == (2, 5, 2, 14)
    assert where(e.right.span) == (2, 9, 2, 14)
    assert where(e.right.right.span) == (2, 13, 2, 14)
    neg = expr_of("-k ** 2")
    assert where(neg.span) == (2, 5, 2, 12)
    assert where(neg.operand.span) == (2, 6, 2, 12)
    paren = expr_of("(a + b)")
    assert where(paren.span) == (2, 6, 2, 11)  # parentheses are not part of the node


@pytest.mark.parametrize(
    "text",
    ["a + b * c", "(a + b) * c", "a - (b - c)", "-a ** 2", "(-a) ** 2", "2 ** 3 ** 2",
     "(2 ** 3) ** 2", "a ** -b", "-(a + b)", "--a", "C // r", "(x as [N, C]) * 2",
     "dense(z, C -> C // r, bias=false)", "x as [N, C]", "conv(z, S -> (), over=H W, k=7)",
     "f(x, y)", "f(-a, b=(c + d) * e)"],
    ids=str,
)
def test_unparse_reparses_to_the_same_tree(text):
    e = expr_of(text)
    assert sexp(expr_of(ast.unparse(e))) == sexp(e)


def test_unparse_names_computed_dims_canonically():
    assert ast.unparse(expr_of("C  //  r")) == "C//r"
    assert ast.unparse(expr_of("(C // r) * 2")) == "C//r*2"
    assert ast.unparse(expr_of("C // (r * 2)")) == "C//(r*2)"


# ---- rejected ----
@pytest.mark.parametrize(
    "src, line, col, message",
    [
        ("block B(x: [N, C]) { y = relu(x; }", 1, 32, "unexpected `;`; expected `)`"),
        ("block B(x: [N, C]) {\n  y = relu(x) @ 2\n}", 2, 15, "unexpected character `@`"),
        ("block B(x: [N, C]) {\n  y = relu(mean(x, over=C)\n  return y\n}", 3, 3,
         "unexpected `return`"),
        ("block B(x: [N, C]) {\n  y = relu(x)\n", 2, 14, "unexpected end of file; expected `}`"),
        ("block B(x: [N, C]) { y = dense(x, C C // 4) }", 1, 39, "unexpected `//`"),
        ("block B(x: [N, C]) { y = dense(x, C => C) }", 1, 38, "unexpected character `>`"),
        ("block B(x [N, C]) { }", 1, 11, "unexpected `[`"),
        ("block B(x: [N C]) { }", 1, 15, "unexpected `C`; expected one of `,` or `]`"),
        ("block B(x: [N, C]) { mean(x, over=C) }", 1, 26, "unexpected `(`"),
        ("block B(x: [N, C]) { y = 1 + }", 1, 30, "unexpected `}`; expected an expression"),
        ("block B(x: [N, C]) { y = x.shape }", 1, 27, "unexpected character `.`"),
        ("block (x) { }", 1, 7, "unexpected `(`; expected a name"),
        ("block B(x: [N, C]) { return }", 1, 29, "unexpected `}`; expected an expression"),
        ("block B(x: [N, C]) { attention }", 1, 32, "unexpected `}`; expected a name"),
        ("use parts.attn", 1, 5, "unexpected `parts`; expected a string"),
        ('block B(x: [N, C]) { y = "abc }', 1, 26, 'unexpected character `"`'),
        ("block B(x: [N, C]) { y = C -> D }", 1, 28, "unexpected `->`"),
        ("block B(x: [N, C]) { y == x }", 1, 25, "unexpected `=`"),
        ("block B(x: [N, C]) { y = (1, 2) }", 1, 28, "unexpected `,`"),
        ("block B(x: [N, C]) { y = 3 as N }", 1, 31, "unexpected `N`; expected `[`"),
        ("block B(x: [N, C]) {}\n}", 2, 1, "unexpected `}`; expected one of `block`, `use`"),
        ("block B(x: [N, C]) { y = relu(x) }\nblock", 2, 6, "unexpected end of file"),
        ("block B(x: [N, C]) { y = x\t$ }", 1, 28, "unexpected character `$`"),
        ("block B(x: [N, C]) { y = x \u00b7 2 }", 1, 28, "unexpected character `\u00b7`"),
        ("block B(x: [N, C]) { y = x \x0c\x01 }", 1, 29, "unexpected character U+0001"),
        ("\ufeffblock B(x: [N, C]) { }", 1, 1, "unexpected character U+FEFF"),
    ],
    ids=["unexpected-token", "unexpected-char", "unclosed-paren", "unclosed-brace",
         "missing-arrow", "fat-arrow", "param-without-colon", "dims-without-comma",
         "bare-call-statement", "dangling-operator", "attribute-access", "block-without-name",
         "empty-return", "empty-attention", "use-without-quotes", "unterminated-string",
         "arrow-outside-call", "comparison", "tuple", "as-without-brackets", "extra-brace",
         "eof-after-block", "tab-before-bad-char", "unicode-char", "control-char", "bom"],
)
def test_rejected_snippets_point_at_the_error(src, line, col, message):
    with pytest.raises(ParseError) as exc:
        parse(src, "bad.attn")
    (diag,) = exc.value.diagnostics
    assert diag.message.startswith(message), diag.message
    assert (diag.span.path, diag.span.line, diag.span.col) == ("bad.attn", line, col)
    assert diag.span.end_col > diag.span.col
    assert diag.message[0].islower() and not diag.message.endswith(".")
    # the rendered text quotes the line and puts the caret under the column
    text = str(exc.value)
    assert text.splitlines()[0].startswith(f"bad.attn:{line}:{col}: error: ")


def test_calling_the_result_of_a_call_is_refused_with_a_span():
    with pytest.raises(SignatureError) as exc:
        parse("block B(x: [N, C]) { y = f(a)(b) }", "t.attn")
    (diag,) = exc.value.diagnostics
    assert diag.message == "only a named op, block or layer can be called"
    assert where(diag.span) == (1, 26, 1, 30)


def test_parse_error_renders_source_and_caret():
    with pytest.raises(ParseError) as exc:
        parse("block B(x: [N, C]) {\n  y = relu(x;\n}", "se.attn")
    assert str(exc.value) == (
        "se.attn:2:13: error: unexpected `;`; expected `)`\n"
        "    2 |   y = relu(x;\n"
        "      |             ^\n"
        "  hint: close the `(` opened on line 2 with `)`\n"
        "  note: the unclosed `(` is here: se.attn:2:11"
    )


def test_only_the_first_syntax_error_is_reported():
    with pytest.raises(ParseError) as exc:
        parse("block B(x: [N, C]) {\n  y = relu(x;\n  z = @\n}", "t.attn")
    assert len(exc.value.diagnostics) == 1


@pytest.mark.parametrize(
    "src",
    [
        "block B(x: [N, C]) { y = dense(x, C C // r) }",
        "block B(x: [N, C]) { excite y = dense(x, C C // r) }",
        "block B(x: [N, C]) { layer f = dense(C C // r) }",
        "block B(x: [N, C]) { excite layer f = seq(relu, dense(C C // r)) }",
        "block B(x: [N, C]) { y = sigmoid(relu(dense(x, C C // r))) }",
        "block B(x: [N, C]) { return dense(x, C C * 2) }",
        "block B(x: [N, C], r: int) { y = x\n  s = dense(x, C 2 * C, bias=false) }",
    ],
    ids=["assign", "staged", "layer", "staged-layer-seq", "nested", "return", "second-stmt"],
)
def test_targeted_hints_do_not_depend_on_nesting(src):
    # lark's own match_examples compares stack depth too; ours compares the LALR state only
    with pytest.raises(ParseError) as exc:
        parse(src, "t.attn")
    assert exc.value.diagnostics[0].hints == (
        "a dim map is written `In -> Out`, e.g. `dense(z, C -> C // r)`",)


@pytest.mark.parametrize(
    "src",
    ["block B(x: [N, C]) { y = mean(x, over=H W 2) }",  # same state as `C C //`, other token
     "block B(x: [N, C]) { y = f(x, k=) }"],  # where `C => C` once claimed every error
    ids=["other-token", "after-keyword"],
)
def test_targeted_hints_need_the_same_token(src):
    with pytest.raises(ParseError) as exc:
        parse(src, "t.attn")
    assert not any("dim map" in h for h in exc.value.diagnostics[0].hints)


def test_every_syntax_example_is_a_syntax_error():
    from attncc.syntax.errors import _EXAMPLES

    for examples in _EXAMPLES.values():
        for example in examples:
            with pytest.raises(ParseError):
                parse(example)


# ---- layers and files ----
def test_nested_seq_is_flattened():
    src = "block B(x: [N, C]) {\n  layer m = seq(relu, seq(sigmoid, relu))\n  return m(x)\n}"
    ir = elaborate(src, "b.attn")
    ops = [ir.node(n).op for n in ir.topo() if ir.node(n).op not in ("input", "param")]
    assert ops == ["relu", "sigmoid", "relu"]


def test_use_loads_blocks_from_other_files(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "gate.attn").write_text(
        'use "../common.attn"\nblock Gate(x: [N, C]) { y = Squash(x)\n return y }\n')
    (tmp_path / "common.attn").write_text("block Squash(x: [N, C]) { return sigmoid(x) }\n")
    main = tmp_path / "main.attn"
    main.write_text('use "parts/gate.attn"\nblock Main(x: [N, C]) { return Gate(x) }\n')
    ir = elaborate(main.read_text(), str(main))
    assert [ir.node(n).op for n in ir.topo()] == ["input", "sigmoid"]
    assert set(ir.sources) == {str(main), str((tmp_path / "parts" / "gate.attn").resolve()),
                               str((tmp_path / "common.attn").resolve())}


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.attn", "link.attn"],
                         ids=["absolute", "parent", "symlink-out"])
def test_use_may_not_leave_the_compiled_specs_folder(tmp_path, target):
    from attncc.diagnostics import NameError_

    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    outside = tmp_path / "outside.attn"
    outside.write_text("block Secret(x) { return x }\n")
    (spec_dir / "link.attn").symlink_to(outside)
    main = spec_dir / "main.attn"
    main.write_text(f'use "{target}"\nblock Main(x: [N, C]) {{ return x }}\n')
    with pytest.raises(NameError_) as exc:
        elaborate(main.read_text(), str(main))
    (diag,) = exc.value.diagnostics
    assert diag.message == f"`use` path `{target}` leaves the spec's folder"
    assert (diag.span.line, diag.span.col) == (1, 5)


# ---- the grammar file ----
def _grammar_literals() -> set[str]:
    """Every double-quoted literal of the grammar outside `//` comment lines."""
    lines = [ln for ln in GRAMMAR.read_text().splitlines() if not ln.lstrip().startswith("//")]
    return set(re.findall(r'"((?:[^"\\]|\\.)*)"', "\n".join(lines)))


def test_grammar_never_lists_op_names():
    literals = _grammar_literals()
    ops = set(all_ops())
    # the test can only fail if these names exist: make sure they do
    assert {"mean", "dense", "conv", "sigmoid", "relu", "max"} <= ops
    assert not literals & ops, f"op names in the grammar: {sorted(literals & ops)}"
    assert not literals & set(hyper.FUNCTIONS)
    assert "seq" not in literals
    # what the grammar does spell out: keywords (today's and DESIGN §2's planned ones) and
    # punctuation; any other word needs a deliberate entry here
    words = {lit for lit in literals if lit.isidentifier()}
    assert {"use", "block", "layer", "dim", "attention", "return", "as", "true", "false"} <= words
    assert words <= {"use", "block", "layer", "param", "dim", "example", "attention", "return",
                     "as", "true", "false", "preset", "repeat", "branches", "aggregate"}


def test_grammar_file_follows_the_section_order():
    text = GRAMMAR.read_text()
    sections = re.findall(r"^// ---- (.+?) ----$", text, flags=re.M)
    assert sections == ["start", "declarations", "block parameters", "statements",
                        "expressions (lowest precedence first)", "dim syntax", "terminals",
                        "imports and ignores"]
    assert text.rstrip().endswith("%ignore COMMENT")


def test_loaded_grammar_is_the_repository_file():
    assert grammar_text() == GRAMMAR.read_text(encoding="utf-8")


def test_wheel_ships_the_grammar_and_the_specs(tmp_path):
    builders = pytest.importorskip("hatchling.builders.wheel")
    (wheel,) = builders.WheelBuilder(str(ROOT)).build(directory=str(tmp_path),
                                                      versions=["standard"])
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("attncc/_grammar/attn.lark") == GRAMMAR.read_bytes()
        specs = sorted((ROOT / "specs").glob("*.attn"))
        assert specs, "no specs to ship"
        for spec in specs:
            assert zf.read(f"attncc/_specs/{spec.name}") == spec.read_bytes()
        shipped = {n for n in names if n.startswith("attncc/_specs/")}
        assert shipped == {f"attncc/_specs/{s.name}" for s in specs}
        assert "attncc/syntax/grammar.py" in names
        assert not any(n.startswith(("tests/", "grammar/", ".venv")) for n in names)
