"""`attncc bench` on tiny shapes with 2 repetitions: structure of the results, the peers, the
reports and the degraded runs. Timings are never asserted (the benchmark reports them)."""

from __future__ import annotations

import json

import pytest
import torch

from attncc import bench
from attncc.cli import main

TINY = {"x": (2, 16, 5, 7)}
FAST = {"repeats": 2, "warmup": 1, "inner": 1, "progress": False}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fast_bandwidth(monkeypatch):
    real = bench.measure_bandwidth
    monkeypatch.setattr(bench, "measure_bandwidth", lambda: real(mib=8, repeats=2))


def _by(row: bench.Row) -> dict[tuple[str, str], bench.Result]:
    return {(r.who, r.backend): r for r in row.results}


def test_reference_peer_is_timed_eager_and_in_onnxruntime():
    (row,), meta = bench.run(["se"], [TINY], hyper={"r": 4}, threads=1, **FAST)
    by = _by(row)
    assert set(by) == {("attncc", "eager"), ("attncc", "onnx"), ("ref", "eager"), ("ref", "onnx")}
    for r in by.values():
        assert r.median_ms > 0 and r.min_ms <= r.median_ms <= r.max_ms
    assert by[("attncc", "eager")].peak_mib is not None
    assert by[("attncc", "onnx")].peak_mib is None and "n/a" in by[("attncc", "onnx")].note
    assert by[("ref", "onnx")].compile_s is not None
    assert row.ratio_best is not None and row.ratio_eager is not None
    assert row.winner in ("eager", "onnx")
    assert row.bytes_moved > 0 and row.bound_ms > 0
    assert meta["threads"] == 1 and meta["bandwidth_gbs"] > 0
    assert "allocator" in meta["allocator"] and "profiler" in meta["peak_memory"]


def test_without_paper_refs_only_attnccs_backends_run(monkeypatch):
    """An installed wheel has no tests/paper_refs: attncc's backends alone, no ratio."""
    monkeypatch.setattr(bench, "_repo_tests", lambda: None)
    (row,), _ = bench.run(["eca"], [TINY], **FAST)
    assert {r.who for r in row.results} == {"attncc"}
    assert row.ratio_best is None and "not importable" in row.note
    assert "| `eca` |" in bench.markdown([row], _)


def test_a_failing_peer_export_is_reported_not_raised(monkeypatch):
    def refuse(*a, **k):
        raise RuntimeError("exporter says no")

    monkeypatch.setattr(bench, "export_peer", refuse)
    (row,), meta = bench.run(["se"], [TINY], hyper={"r": 4}, onnx=True, **FAST)
    r = _by(row)[("ref", "onnx")]
    assert r.median_ms is None and "exporter says no" in r.note
    assert "n/a" in bench.markdown([row], meta)


def test_a_spec_without_peers_and_a_failing_spec_keep_the_run_going(monkeypatch):
    monkeypatch.delitem(bench._REFS, "simam")
    rows, _ = bench.run(["simam", "no_such_spec"], [TINY], **FAST)
    assert rows[0].results and rows[0].ratio_best is None
    assert not rows[1].results and rows[1].note.startswith("failed")


def test_default_shape_comes_from_the_spec_example():
    assert bench.default_shapes("se", {}) == {"x": (2, 64, 14, 14)}


def test_cli_writes_json_markdown_and_says_when_there_is_no_plot(tmp_path, capsys):
    out_json, out_md, out_png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    code = main(["bench", "se", "--set", "r=4", "--shape", "x=2,16,5,7", "--shape",
                 "x=1,16,3,4", "--repeats", "2", "--warmup", "1", "--inner", "1", "--no-onnx",
                 "--quiet", "--json", str(out_json), "--markdown", str(out_md),
                 "--plot", str(out_png)])
    assert code == 0
    data = json.loads(out_json.read_text())
    assert [r["shapes"]["x"] for r in data["rows"]] == [[2, 16, 5, 7], [1, 16, 3, 4]]
    assert data["meta"]["repeats"] == 2
    md = out_md.read_text()
    assert md.count("| `se` |") == 2 and "attncc ÷ best peer" in md
    text = capsys.readouterr().out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib not importable" in text and not out_png.exists()
    else:
        assert out_png.exists()


def test_cli_needs_a_spec_or_library(capsys):
    assert main(["bench"]) == 2
    assert "--library" in capsys.readouterr().err


def test_progress_bar_goes_to_stderr(capsys):
    bench.run(["se"], [TINY], hyper={"r": 4}, repeats=1, warmup=1, inner=1, onnx=False)
    captured = capsys.readouterr()
    assert "1/1" in captured.err and captured.out == ""


def test_peak_bytes_sees_a_large_temporary():
    x = torch.randn(64, 256)
    assert bench.peak_bytes(lambda: torch.mm(x, x.T)) >= 64 * 64 * 4


def test_tuned_allocator_times_the_peers_again_in_a_child():
    (row,), meta = bench.run(["se"], [TINY], hyper={"r": 4}, threads=1, onnx=False,
                             tuned_allocator=True, **FAST)
    by = _by(row)
    assert ("ref +malloc", "eager") in by and ("attncc +malloc", "eager") in by
    assert by[("ref +malloc", "eager")].median_ms > 0
    assert row.ratio_best_tuned is not None and row.ratio_eager_tuned is not None
    assert "jemalloc" in meta["allocator_tuned"] or "GLIBC_TUNABLES" in meta["allocator_tuned"]
    assert "+malloc" in bench.markdown([row], meta)


def test_summary_puts_attnccs_best_beside_the_best_peer():
    (row,), meta = bench.run(["se"], [TINY], hyper={"r": 4}, threads=1, **FAST)
    text = bench.summary([row], meta)
    head, _, line = text.splitlines()
    assert line.startswith("| `se` | 2×16×5×7 |") and "ms" in line
    assert len(line.split("|")) == len(head.split("|"))


def test_a_peer_export_that_runs_too_long_gives_up():
    import time as _time

    class Slow(torch.nn.Module):
        def forward(self, x):
            _time.sleep(0.3)  # a Python loop that tracing would unroll, standing in
            return x * 2

    with pytest.raises(RuntimeError, match="TimeoutError"):
        bench.export_peer(Slow(), [torch.ones(2, 3)], ["x"], seconds=0.1)


def test_reports_redrawn_from_a_saved_run(tmp_path, capsys):
    rows, meta = bench.run(["se"], [TINY], hyper={"r": 4}, threads=1, onnx=False, **FAST)
    saved = tmp_path / "run.json"
    saved.write_text(bench.to_json(rows, meta))
    again, meta2 = bench.from_json(saved.read_text())
    assert bench.markdown(again, meta2) == bench.markdown(rows, meta)
    out_md = tmp_path / "again.md"
    assert main(["bench", "--from-json", str(saved), "--markdown", str(out_md)]) == 0
    assert out_md.read_text() == bench.markdown(rows, meta)
