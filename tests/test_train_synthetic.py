"""examples/train_synthetic.py end to end at its smoke size; its PNG writer and its data."""

from __future__ import annotations

import importlib.util
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ts():
    return _load("train_synthetic")


def read_png(path: Path) -> np.ndarray:
    """Parse an 8-bit RGB PNG with unfiltered rows, checking every chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour) == (8, 2)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    assert len(raw) == h * (1 + 3 * w)
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def test_png_writer_round_trips(ts, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    ts.write_png(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), rgb)


def test_boxes_hold_the_object(ts):
    size = ts.SIZES["full"]
    images, labels, boxes = ts.make_split(np.random.default_rng(1), size, 16)
    assert images.shape == (16, 3, size.image, size.image)
    assert 0 <= images.min() and images.max() <= 1
    assert set(labels.tolist()) <= set(range(len(ts.CLASSES)))
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (h >= size.obj[0] - 2).all() and (w <= size.obj[1]).all()


def test_smoke_run_writes_a_picture_and_the_numbers(ts, tmp_path, capsys):
    out = tmp_path / "grid.png"
    threads = torch.get_num_threads()
    assert ts.main(["--steps", "20", "--size", "small", "--out", str(out),
                    "--threads", str(threads)]) == 0
    text = capsys.readouterr().out
    acc = re.search(r"test accuracy: ([\d.]+)%", text)
    mass = re.search(r"attention mass inside the object's box: ([\d.]+)%", text)
    share = re.search(r"box share of the image area: ([\d.]+)%", text)
    assert acc and mass and share, text
    assert 0 <= float(acc[1]) <= 100 and 0 < float(mass[1]) < 100 and 0 < float(share[1]) < 100
    img = read_png(out)
    assert img.shape[0] > 24 and img.shape[1] > 48 and img.std() > 0


def test_a_spec_without_a_spatial_map_is_refused(ts, tmp_path):
    with pytest.raises(SystemExit, match="no attention map over H and W"):
        ts.main(["--spec", "se", "--steps", "1", "--size", "small", "--out",
                 str(tmp_path / "x.png"), "--threads", str(torch.get_num_threads())])


def test_export_library_progress(capsys):
    import io

    el = _load("export_library")
    log = io.StringIO()
    p = el.Progress(2, stream=log)
    p.step("se")
    p.step("cbam")
    p.close()
    assert log.getvalue() == "[1/2] se\n[2/2] cbam\n"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    p = el.Progress(2, stream=tty, width=4)
    p.step("se")
    p.close()
    assert tty.getvalue().startswith("\r[....] 0/2 se") and "\r[####] 2/2 done" in tty.getvalue()


def test_runs_are_deterministic(ts, tmp_path, capsys):
    def run(name):
        out = tmp_path / f"{name}.png"
        assert ts.main(["--steps", "5", "--size", "small", "--pool", "mean", "--out", str(out),
                        "--threads", str(torch.get_num_threads())]) == 0
        text = capsys.readouterr().out
        # everything but the timings
        return re.sub(r"\(\d+ s.*?\)", "", text.replace(str(out), "")), out.read_bytes()

    assert run("a") == run("b")
