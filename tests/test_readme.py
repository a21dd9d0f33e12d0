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
