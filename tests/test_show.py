"""attncc show: the stage/params/FLOPs table and the Graphviz picture."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

import attncc
import attncc.show
from attncc.cli import main
from attncc.diagnostics import AttnccError
from attncc.show import stage_table, to_dot

HAS_DOT = shutil.which("dot") is not None


def test_table_counts_every_stage_and_the_total():
    ir = attncc.check("se", C=64)
    table = stage_table(ir, {"x": (2, 64, 14, 14)})
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    assert rows["squeeze"] == ["1", "0", "25.09k"]          # mean: 2*64*14*14 adds
    assert rows["excite"] == ["4", "580", "2.57k"]          # two dense maps, relu, sigmoid
    assert rows["gate"] == ["1", "0", "25.09k"]             # x * s
    # 25088 + (1024 + 8 + 1024 + 512) + 25088
    assert rows["total"] == ["6", f"{ir.parameter_count():,}", "52.74k"]


def test_table_sizes_derived_dims_from_the_shapes():
    # coordinate attention's L = H + W exists only at run time: its cost must still count
    ir = attncc.check("coordatt", C=64)
    assert "FLOPs" in stage_table(ir, {"x": (2, 64, 14, 10)})


def test_dot_groups_stages_and_labels_edges_with_dims():
    dot = to_dot(attncc.check("cbam", C=64))
    assert dot.count("subgraph cluster_") == 5  # squeeze, gate, squeeze, excite, gate
    assert 'label="[N, S, H, W]"' in dot     # the stacked maps into the 7x7 conv
    assert 'label="[Pair, N, C//r]"' in dot  # the shared MLP on both descriptors at once
    assert dot.count('color="#dc2626"') == 2  # the two attention maps
    assert "align" not in dot                 # plumbing is hidden


def test_dot_quotes_what_it_prints():
    assert attncc.show._q('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_svg_is_a_picture_of_the_block(tmp_path, capsys):
    out = tmp_path / "cbam.svg"
    assert main(["show", "cbam", "--format", "svg", "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for name in ("s_c", "s_s", "mlp.0", "squeeze", "excite", "gate"):
        assert name in text


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
def test_png_is_a_png(tmp_path):
    out = tmp_path / "se.png"
    assert main(["show", "se", "--format", "png", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_graphviz_the_dot_file_is_written_and_the_user_told(tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setattr(attncc.show.shutil, "which", lambda name: None)
    out = tmp_path / "eca.svg"
    assert main(["show", "eca", "--format", "svg", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err
    assert not out.exists()
    assert (tmp_path / "eca.dot").read_text().startswith('digraph "ECA"')


def test_render_rejects_nothing_silently(tmp_path, monkeypatch):
    monkeypatch.setattr(attncc.show.shutil, "which", lambda name: None)
    with pytest.raises(AttnccError, match="not installed"):
        attncc.show.render("digraph {}", "png", tmp_path / "x.png")
