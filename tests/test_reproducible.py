"""Safe, reproducible export: byte-identical outputs across processes, valid ONNX for every
bundled spec at every onnxruntime optimisation level, and no partial file from any command.

- The same spec, hyperparameters, seed and options give byte-identical ONNX files and
  generated sources, also in two fresh interpreters with different PYTHONHASHSEED values
  (so no set or dict order that depends on string hashing leaks into an output).
- Every bundled spec's export passes `onnx.checker.check_model(full_check=True)`, and loads
  and agrees with the NumPy reference in onnxruntime at ORT_DISABLE_ALL, BASIC, EXTENDED and
  ALL (one small shape per spec).
- Every file the command line writes (`export -o`, `compile -o`, `show -o`) goes through
  `write_atomic`: a write that fails or is interrupted leaves no partial or temporary file,
  and an existing file keeps its old contents.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import _harness as h
import onnx
import onnxruntime as ort
import pytest
from test_specs import BASE_SHAPE, DEFAULT_SETTINGS, SETTINGS, TOLERANCE

import attncc
import attncc.backends.onnx_export as onnx_export
from attncc.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]

# specs that exercise sets and dicts of names in the compiler: shared layers (cbam), repeat
# (emanet), stacks (sk), splits (coordatt), index tables (psanet), constants (fcanet)
REPRO_SPECS = ["se", "cbam", "emanet", "sk", "coordatt", "psanet", "fcanet", "nonlocal"]


def _setting(stem: str) -> dict:
    return SETTINGS.get(stem, DEFAULT_SETTINGS)[0][1]


_DIGEST_SCRIPT = r"""
import hashlib, json, sys
sys.path.insert(0, {tests!r})
import attncc
from attncc.backends.torch_codegen import generate
out = {{}}
for stem, hyper in json.loads(sys.argv[1]).items():
    m = attncc.compile({specs!r} + "/" + stem + ".attn", seed=0, **hyper)
    onnx_bytes = attncc.to_onnx(m, attention_outputs=True).SerializeToString()
    out[stem] = [hashlib.sha256(onnx_bytes).hexdigest(),
                 hashlib.sha256(generate(m.ir).src.encode()).hexdigest(),
                 hashlib.sha256(m.ir.dump().encode()).hexdigest()]
print(json.dumps(out))
"""


def _digests_in_subprocess(hash_seed: str) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
    script = _DIGEST_SCRIPT.format(tests=str(ROOT / "tests"), specs=str(h.SPECS_DIR))
    hypers = json.dumps({s: _setting(s) for s in REPRO_SPECS})
    proc = subprocess.run([sys.executable, "-c", script, hypers], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_exports_are_byte_identical_across_hash_seeds():
    a = _digests_in_subprocess("1")
    b = _digests_in_subprocess("4242")
    assert set(a) == set(REPRO_SPECS)
    differ = {s: [k for k, x, y in zip(("onnx", "source", "ir"), a[s], b[s], strict=True)
                  if x != y] for s in a}
    assert not any(differ.values()), f"outputs depend on PYTHONHASHSEED: {differ}"
    # and this process (another hash seed again) agrees with both
    from attncc.backends.torch_codegen import generate

    for stem in ("se", "emanet"):
        m = attncc.compile(h.SPECS_DIR / f"{stem}.attn", seed=0, **_setting(stem))
        data = attncc.to_onnx(m, attention_outputs=True).SerializeToString()
        assert hashlib.sha256(data).hexdigest() == a[stem][0], stem
        assert hashlib.sha256(generate(m.ir).src.encode()).hexdigest() == a[stem][1], stem


@pytest.mark.parametrize("stem", ["se", "sk", "emanet"])
def test_cli_outputs_are_byte_identical(stem, tmp_path):
    """`attncc export` and `attncc compile` twice with the same options: the same bytes."""
    hyper = _setting(stem)
    sets = [a for k, v in hyper.items() for a in ("--set", f"{k}={v}")]
    for name in ("a", "b"):
        assert cli_main(["export", stem, "-o", str(tmp_path / f"{name}.onnx"), "--seed", "3",
                         *sets]) == 0
        assert cli_main(["compile", stem, "-o", str(tmp_path / f"{name}.py"), *sets]) == 0
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert (tmp_path / "a.py").read_bytes() == (tmp_path / "b.py").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "a.py", "b.onnx", "b.py"]


# ---- every bundled spec: full check, every optimisation level (ORT 1.2x adds LAYOUT) ----
LEVELS = {name.removeprefix("ORT_").lower(): level
          for name, level in ort.GraphOptimizationLevel.__members__.items()}
assert set(LEVELS) >= {"disable_all", "enable_basic", "enable_extended", "enable_all"}


@pytest.mark.parametrize("stem", [p.stem for p in h.SPEC_PATHS])
def test_every_spec_exports_valid_onnx_that_runs_at_every_level(stem):
    hyper = _setting(stem)
    m = h.randomize_(h.compile_spec(stem, hyper), 21)
    model = h.onnx_model(m)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    x = h.make_inputs(m.ir, BASE_SHAPE, seed=22)
    want = h.run_numpy(m, x)
    tol = TOLERANCE.get(stem, {})
    errors = []
    for name, level in LEVELS.items():
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        opts.log_severity_level = 3
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        got = dict(zip(h.output_keys(m.ir), sess.run(None, x), strict=True))
        # fused kernels (optimised levels) round differently: judged over each output's scale
        for key in want:
            scale = max(1.0, float(abs(want[key]).max()))
            errors += h.compare(f"{stem} at {name}", ("numpy", "ort"), {key: want[key]},
                                {key: got[key]}, tol.get("rtol", h.RTOL),
                                tol.get("atol", h.ATOL) * scale)
    assert not errors, "\n".join(errors)


# ---- no partial files ----
def _fail_during_write(monkeypatch, exc: BaseException) -> list[int]:
    """Make the atomic writer's fsync raise `exc` after the data went to the temporary file."""
    calls: list[int] = []
    real = os.fsync

    def broken(fd):
        calls.append(os.fstat(fd).st_size)
        raise exc

    monkeypatch.setattr(onnx_export.os, "fsync", broken)
    assert real is not broken
    return calls


COMMANDS = {
    "export": lambda out: ["export", "se", "-o", str(out), "--set", "C=24", "--set", "r=4"],
    "compile": lambda out: ["compile", "se", "-o", str(out), "--set", "C=24"],
    "show-text": lambda out: ["show", "se", "-o", str(out), "--set", "C=24"],
    "show-dot": lambda out: ["show", "se", "--format", "dot", "-o", str(out), "--set", "C=24"],
}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize(("exc", "code"), [(OSError(28, "No space left on device"), 3),
                                           (KeyboardInterrupt(), 130)],
                         ids=["disk-full", "interrupt"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_failed_or_interrupted_write_leaves_no_partial_file(command, exc, code, existing,
                                                            tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.file"
    if existing:
        out.write_bytes(b"old contents")
    calls = _fail_during_write(monkeypatch, exc)
    rc = cli_main(COMMANDS[command](out))
    assert rc == code, capsys.readouterr().err
    assert calls and calls[0] > 0, "the command did not write through write_atomic"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["out.file"] if existing else []), left
    if existing:
        assert out.read_bytes() == b"old contents"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_cli_output_is_complete_when_the_write_succeeds(command, tmp_path, capsys):
    out = tmp_path / "out.file"
    assert cli_main(COMMANDS[command](out)) == 0, capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["out.file"]
    data = out.read_bytes()
    if command == "export":
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    elif command == "compile":
        compile(data, "out.py", "exec")  # whole Python source
        assert data.rstrip().endswith(b"[1]")
    else:
        assert data.rstrip().endswith(b"}") or len(data.splitlines()) > 5


def test_api_export_interrupted_leaves_nothing(tmp_path, monkeypatch):
    _fail_during_write(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        attncc.export_onnx(h.compile_spec("se", {"C": 24}), tmp_path / "se.onnx")
    assert list(tmp_path.iterdir()) == []
