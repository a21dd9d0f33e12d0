"""examples/paper_tables.py: its core on two rows, against the papers' figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def pt():
    spec = importlib.util.spec_from_file_location("example_paper_tables",
                                                  EXAMPLES / "paper_tables.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def row(pt, net, spec, layout="1x1"):
    return next(r for r in pt.ROWS if (r.net, r.spec, r.layout) == (net, spec, layout))


def test_se_resnet50_matches_senet_and_cbam_tables(pt):
    r = pt.measure(row(pt, "resnet50", "se"))
    assert r.params == 28_088_024                      # 28.09M (CBAM Table 4)
    assert round(r.macs / 1e9, 3) == 3.860             # CBAM Table 4: ResNet50 + SE 3.860
    assert round((r.macs + r.other_attention) / 1e9, 2) == r.row.paper_gflops  # SENet: 3.87
    line = pt.table([r]).splitlines()[1]
    assert "ResNet-50 + se" in line and "28.09" in line and "SENet" in line


def test_coordatt_mobilenet_v2_matches_the_ca_table(pt):
    r = pt.measure(row(pt, "mobilenet_v2", "coordatt", "1x1"))
    assert round(r.params / 1e6, 2) == r.row.paper_params_m == 3.95
    assert round(r.macs / 1e9, 2) == r.row.paper_gflops == 0.31
    md = pt.table([r], markdown=True).splitlines()
    assert md[0].startswith("| network |") and "| 3.95 |" in md[2]
