"""The public API's docstrings: Google style with an Args/Returns section, and examples that run."""

from __future__ import annotations

import doctest
import inspect
from pathlib import Path

import pytest

import attncc
import attncc.api

PUBLIC = ["check", "compile", "load", "export_onnx", "onnx_session", "to_onnx", "state_arrays",
          "verify_onnx"]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_function_has_a_google_style_docstring(name):
    fn = getattr(attncc, name)
    doc = inspect.getdoc(fn)
    assert doc, name
    assert "Example:\n    >>> " in doc, f"{name} has no runnable example"
    assert "Returns:\n" in doc, f"{name} does not say what it returns"
    params = [p for p in inspect.signature(fn).parameters if p not in ("hyper",)]
    if params:
        assert "Args:\n" in doc
        for p in params:
            assert f"    {p}:" in doc or f"    **{p}:" in doc, f"{name}: `{p}` undocumented"


@pytest.mark.parametrize("module", [attncc, attncc.api], ids=["attncc", "attncc.api"])
def test_docstring_examples_run(module, monkeypatch):
    # the examples name bundled specs and `specs/...` paths relative to the repository
    monkeypatch.chdir(Path(attncc.__file__).resolve().parents[1])
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module.__name__) if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module.__name__}"
