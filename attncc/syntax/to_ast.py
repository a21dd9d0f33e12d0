"""Lark parse tree -> AST: structure and spans only, no semantics."""

from __future__ import annotations

from lark import Token, Transformer, Tree, v_args

from attncc.syntax import ast


class _ToAst(Transformer):
    def __init__(self, path: str, text: str = "") -> None:
        super().__init__()
        self.path = path
        # lark counts lines at "\n" only; str.splitlines() would also split at \r, \x0b, ...
        self.lines = text.split("\n")

    # ---- helpers ----
    def _span(self, meta) -> ast.Span:
        return ast.Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> ast.Name:
        span = ast.Span(self.path, tok.line, tok.column, tok.end_line, tok.end_column)
        return ast.Name(str(tok), span)

    # ---- declarations ----
    @v_args(meta=True)
    def start(self, meta, children):
        uses = tuple(c for c in children if isinstance(c, ast.UseDecl))
        blocks = tuple(c for c in children if isinstance(c, ast.Block))
        return ast.Module(self.path, uses, blocks)

    @v_args(meta=True)
    def use_decl(self, meta, children):
        (s,) = children
        return ast.UseDecl(str(s)[1:-1], self._span(meta), self._tok(s).span)

    @v_args(meta=True)
    def block(self, meta, children):
        name, *rest = children
        params = tuple(c for c in rest if isinstance(c, ast.Param))
        body = tuple(c for c in rest if c is not None and not isinstance(c, (ast.Param, Token)))
        return ast.Block(self._tok(name), params, body, self._span(meta))

    @v_args(meta=True)
    def param(self, meta, children):
        name, typ, default = children
        return ast.Param(self._tok(name), typ, default, self._span(meta))

    @v_args(meta=True)
    def tensor_type(self, meta, children):
        dims = tuple(self._tok(t) for t in children if t is not None)
        return ast.TensorTypeAst(dims, self._span(meta))

    @v_args(meta=True)
    def scalar_type(self, meta, children):
        (t,) = children
        return ast.ScalarType(str(t), self._span(meta))

    # ---- statements ----
    def stage(self, children):
        (t,) = children
        return self._tok(t)

    @v_args(meta=True)
    def assign(self, meta, children):
        stage, target, value = children
        return ast.Assign(stage, self._tok(target), value, self._span(meta))

    @v_args(meta=True)
    def multi_assign(self, meta, children):
        stage, *targets, value = children
        return ast.MultiAssign(stage, tuple(self._tok(t) for t in targets), value,
                               self._span(meta))

    @v_args(meta=True)
    def layer_decl(self, meta, children):
        stage, target, value = children
        return ast.LayerDecl(stage, self._tok(target), value, self._span(meta))

    @v_args(meta=True)
    def param_decl(self, meta, children):
        stage, target, dims, init = children
        return ast.ParamDecl(stage, self._tok(target), dims, init, self._span(meta))

    @v_args(meta=True)
    def dim_decl(self, meta, children):
        target, value = children
        return ast.DimDecl(self._tok(target), value, self._span(meta))

    @v_args(meta=True)
    def example_decl(self, meta, children):
        target, *sizes = children
        return ast.ExampleDecl(self._tok(target),
                               tuple(self._int(t) for t in sizes if t is not None),
                               self._span(meta))

    @v_args(meta=True)
    def preset_decl(self, meta, children):
        name, *values = children
        return ast.PresetDecl(self._tok(name), tuple(v for v in values if v is not None),
                              self._span(meta))

    @v_args(meta=True)
    def attention_decl(self, meta, children):
        return ast.AttentionDecl(tuple(self._tok(t) for t in children), self._span(meta))

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        return ast.Return(tuple(children), self._span(meta))

    @v_args(meta=True)
    def repeat(self, meta, children):
        stage, count, *body = children
        span = self._span(meta)
        # the keyword's own span: after the stage label, when there is one
        start = (stage.span.end_line, stage.span.end_col) if stage else (span.line, span.col)
        keyword = self._keyword_span(start, "repeat")
        return ast.Repeat(stage, count, tuple(b for b in body if b is not None), span, keyword)

    def _keyword_span(self, start: tuple[int, int], word: str) -> ast.Span:
        line, col = start
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        at = text.find(word, col - 1)
        col = at + 1 if at >= 0 else col
        return ast.Span(self.path, line, col, line, col + len(word))

    # ---- expressions ----
    def _binop(op: str):  # noqa: N805 - a factory evaluated in the class body
        @v_args(meta=True)
        def rule(self, meta, children):
            left, right = children
            return ast.BinOp(op, left, right, self._span(meta))

        return rule

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")
    floordiv = _binop("//")
    mod = _binop("%")
    pow = _binop("**")

    @v_args(meta=True)
    def neg(self, meta, children):
        (operand,) = children
        return ast.Neg(operand, self._span(meta))

    @v_args(meta=True)
    def rename(self, meta, children):
        value, dims = children
        return ast.Rename(value, dims, self._span(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        func, *args = children
        args = [a for a in args if a is not None]
        positional = tuple(a for a in args if not isinstance(a, ast.Kwarg))
        kwargs = tuple(a for a in args if isinstance(a, ast.Kwarg))
        if not isinstance(func, ast.Var):
            from attncc.diagnostics import SignatureError

            raise SignatureError("only a named op, block or layer can be called", func.span)
        return ast.Call(func, positional, kwargs, self._span(meta))

    @v_args(meta=True)
    def kwarg(self, meta, children):
        name, value = children
        return ast.Kwarg(self._tok(name), value, self._span(meta))

    @v_args(meta=True)
    def dim_map(self, meta, children):
        src, dst = children
        return ast.DimMap(src, dst, self._span(meta))

    @v_args(meta=True)
    def name_seq(self, meta, children):
        return ast.NameSeq(tuple(self._tok(t) for t in children), self._span(meta))

    def var(self, children):
        (t,) = children
        n = self._tok(t)
        return ast.Var(n.text, n.span)

    def int_lit(self, children):
        (t,) = children
        return ast.IntLit(self._int(t), self._tok(t).span)

    def _int(self, t: Token) -> int:
        # Python refuses to convert more than 4300 digits; no size needs more than 19
        if len(t.lstrip("0")) > 30:
            from attncc.diagnostics import HyperparameterError

            raise HyperparameterError(f"the number `{t[:12]}...` ({len(t)} digits) is too large",
                                      self._tok(t).span,
                                      hints=("hyperparameter values are limited to ±2**62",))
        return int(t)

    def float_lit(self, children):
        (t,) = children
        return ast.FloatLit(float(t), self._tok(t).span)

    def str_lit(self, children):
        (t,) = children
        return ast.StrLit(str(t)[1:-1], self._tok(t).span)

    @v_args(meta=True)
    def true_lit(self, meta, children):
        return ast.BoolLit(True, self._span(meta))

    @v_args(meta=True)
    def false_lit(self, meta, children):
        return ast.BoolLit(False, self._span(meta))

    @v_args(meta=True)
    def empty(self, meta, children):
        return ast.Empty(self._span(meta))


def to_ast(tree: Tree, path: str, text: str = "") -> ast.Module:
    """`text`, the parsed source, lets keyword spans (`repeat`) be found exactly."""
    return _ToAst(path, text).transform(tree)
