"""The command line: exit codes, output, no tracebacks, no partial files, no heavy imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from attncc import __version__
from attncc.cli import main

ROOT = Path(__file__).resolve().parents[1]
CBAM = str(ROOT / "specs" / "cbam.attn")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attncc", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_list_names_every_bundled_spec(capsys):
    assert main(["list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for spec in (ROOT / "specs").glob("*.attn"):
        assert spec.stem in lines
        assert "error" not in lines[spec.stem]
    assert re.search(r"channel & spatial +Woo et al\., ECCV 2018", lines["cbam"])
    assert " 680 " in lines["cbam"]  # parameters at the spec's example shape (C=64)


def test_check_prints_summary(capsys):
    assert main(["check", CBAM, "--set", "C=64"]) == 0
    out = capsys.readouterr().out
    assert "block CBAM" in out
    assert "params  680" in out  # 2 * 64*4 + 4 + 64 (MLP) + 98 (7x7 conv) + 2 (BN affine)
    assert "squeeze" in out and "excite" in out and "gate" in out
    assert "attention maps: s_c, s_s" in out


def test_check_takes_sizes_from_a_shape(capsys):
    assert main(["check", "eca", "--shape", "x=2,256,7,5"]) == 0
    out = capsys.readouterr().out
    assert "C=256" in out and "k=5" not in out  # k is derived, not a hyperparameter
    assert "params  5" in out  # ECA at C=256: k = 5, one 1-D kernel


def test_export_writes_verified_onnx(tmp_path, capsys):
    target = tmp_path / "cbam.onnx"
    assert main(["export", CBAM, "-o", str(target), "--shape", "x=2,64,17,23"]) == 0
    out = capsys.readouterr().out
    diff = float(out.split("max |difference| = ")[1].split()[0])
    assert diff < 1e-5
    model = onnx.load(target)
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 64, "H", "W"]


def test_export_over_tolerance_writes_nothing(tmp_path, capsys):
    target = tmp_path / "se.onnx"
    # a negative tolerance can never be met: the file must not appear
    code = main(["export", "se", "-o", str(target), "--shape", "x=1,32,5,7", "--tol", "-1"])
    assert code == 1
    assert "was not written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_user_error_exits_1_with_diagnostic(tmp_path):
    bad = tmp_path / "bad.attn"
    bad.write_text("block B(x: [N, C, H, W]) {\n  y = mean(x, over=H Q)\n  return y\n}\n")
    r = run_cli("check", str(bad), "--set", "C=8")
    assert r.returncode == 1
    assert f"{bad}:2:" in r.stderr and "error:" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["check", "se", "--set", "r"], id="set-without-value"),
        pytest.param(["export", "se", "-o", "x.onnx", "--shape", "x=2,a"], id="bad-shape"),
        pytest.param(["frobnicate"], id="unknown-command"),
    ],
)
def test_usage_errors_exit_2(args, capsys):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == 2


def test_internal_error_exits_3_with_report_line(monkeypatch, capsys):
    import attncc.cli

    def boom(args):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(attncc.cli, "cmd_list", boom)
    assert main(["list"]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "please report" in err
    assert "Traceback" not in err


def test_check_runs_without_torch_or_onnxruntime():
    # attncc check must work where only the light dependencies are installed
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None; "
        "sys.modules['onnx'] = None; from attncc.cli import main; "
        "sys.exit(main(['check', 'cbam', '--set', 'C=32']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert "block CBAM" in r.stdout


def test_import_is_light():
    code = ("import sys, attncc; heavy = [m for m in ('torch', 'onnx', 'onnxruntime') "
            "if m in sys.modules]; print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, check=True)
    assert r.stdout.strip() == "[]"


def test_export_defaults_to_the_spec_example_shape(tmp_path, capsys):
    target = tmp_path / "eca.onnx"
    assert main(["export", "eca", "-o", str(target), "--set", "C=48"]) == 0
    out = capsys.readouterr().out
    assert "x=2,48,14,14" in out  # the example shape, with the --set dim substituted
    assert target.exists()


def test_export_without_any_shape_says_how_to_give_one(tmp_path, capsys):
    spec = tmp_path / "b.attn"
    spec.write_text("block B(x: [N, C]) { return relu(x) }\n")
    assert main(["export", str(spec), "-o", str(tmp_path / "b.onnx")]) == 2
    assert "example x: [...]" in capsys.readouterr().err
    assert not (tmp_path / "b.onnx").exists()


def test_example_shape_must_fit_the_input(tmp_path):
    spec = tmp_path / "b.attn"
    spec.write_text("block B(x: [N, C]) {\n  example x: [2, 3, 4]\n  return relu(x)\n}\n")
    r = run_cli("check", str(spec))
    assert r.returncode == 1
    assert f"{spec}:2:3: error: example shape of `x` must be 2 positive sizes" in r.stderr


PRESETS = """block P(x: [N, C, H, W], lam: float = 1e-4, r: int = 4) {
  preset official(lam = 1e-4)
  preset imagenet(lam = 0.1, r = 2)
  y = x * lam
  return y
}
"""


def test_presets_are_listed_and_applied_under_explicit_values(tmp_path, capsys):
    spec = tmp_path / "p.attn"
    spec.write_text(PRESETS)
    assert main(["check", str(spec), "--preset", "imagenet", "--set", "r=8"]) == 0
    out = capsys.readouterr().out
    assert "hyper   lam=0.1, r=8  (preset imagenet)" in out
    assert "presets official: lam=0.0001; imagenet: lam=0.1, r=2" in out


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        pytest.param(PRESETS, ["--preset", "imagenett"], "did you mean `imagenet`?",
                     id="unknown-preset"),
        pytest.param(PRESETS.replace("r = 2", "q = 2"), ["--preset", "imagenet"],
                     "has no hyperparameter `q`", id="unknown-key"),
        pytest.param(PRESETS.replace("lam = 0.1", "lam = r"), [], "preset values are numbers",
                     id="name-as-value"),
    ],
)
def test_preset_errors(tmp_path, capsys, text, args, message):
    spec = tmp_path / "p.attn"
    spec.write_text(text)
    assert main(["check", str(spec), *args]) == 1
    assert message in capsys.readouterr().err


def test_api_takes_a_preset():
    import attncc

    ir = attncc.check(PRESETS, preset="imagenet")
    assert ir.hyper == {"lam": 0.1, "r": 2} and ir.preset == "imagenet"
    assert attncc.check(PRESETS).preset is None


def test_a_closed_pipe_is_not_an_error():
    # `attncc list | head -1`: the reader leaves before attncc finishes writing
    r = subprocess.run(f"'{sys.executable}' -m attncc list | head -1", shell=True,
                       capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert r.stdout.startswith("spec")
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_export_judges_large_outputs_by_their_scale(tmp_path, capsys):
    # GloRe's unnormalised sums reach thousands at random weights: float32 rounding there is
    # ~1e-3 absolute, yet the graph is right; the check is taken over the output's scale
    assert main(["export", "glore", "-o", str(tmp_path / "glore.onnx")]) == 0
    out = capsys.readouterr().out
    assert float(out.split("max |difference| = ")[1].split()[0]) < 1e-5


def test_export_at_another_opset_with_static_shapes(tmp_path, capsys):
    out = tmp_path / "cbam.onnx"
    assert main(["export", CBAM, "-o", str(out), "--set", "C=32", "--opset", "20",
                 "--static"]) == 0
    model = onnx.load(out)
    assert model.opset_import[0].version == 20
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == \
        [2, 32, 14, 14]
    assert main(["export", CBAM, "-o", str(tmp_path / "x.onnx"), "--set", "C=32",
                 "--opset", "17"]) == 1
    assert "opset 17 is not supported" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
