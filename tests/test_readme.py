"""The README's mechanism table is `attncc list --markdown`, so it cannot drift from specs/."""

from __future__ import annotations

from pathlib import Path

from attncc.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_is_current(capsys):
    assert main(["list", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- specs:begin -->") + len("<!-- specs:begin -->")
    end = text.index("<!-- specs:end -->")
    assert text[start:end].strip() == table, (
        "README's table is out of date: run `make readme`")


def test_quick_start_is_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```")[1]
    assert block.strip().splitlines() == ["make demo", "make test"]


def test_tutorial_runs_as_written(tmp_path, monkeypatch):
    """The tutorial's spec is examples/my_gate.attn, and its Python block runs as printed."""
    text = README.read_text(encoding="utf-8").split("## Five-minute tutorial", 1)[1]
    text = text.split("\n## ", 1)[0]
    blocks = text.split("```")
    spec = (README.parent / "examples" / "my_gate.attn").read_text(encoding="utf-8")
    assert blocks[1].strip() == spec.strip(), "README's tutorial spec differs from the example"
    python = next(b for b in blocks if b.startswith("python\n"))[len("python\n"):]
    for path in ("examples/my_gate.attn", "docs/img/tutorial_my_gate.png"):
        assert (README.parent / path).is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "my_gate.attn").write_text(spec, encoding="utf-8")
    exec(compile(python, "README.md#tutorial", "exec"), {})  # the README's own example code
    assert (tmp_path / "my_gate.onnx").is_file()
