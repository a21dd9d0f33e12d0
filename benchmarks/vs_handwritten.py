"""Latency of compiled blocks against hand-written modules, as ratios measured in one run.

For SE, ECA and CBAM: the attncc-compiled PyTorch module and the exported ONNX model in
onnxruntime, each against the hand-written reference module from the papers (the one the
tests check against), all on the same input and weights, CPU, eval mode. Timings interleave
the contenders and take medians, so machine noise affects every column alike; only ratios
are printed (below 1.0 means faster than hand-written).

    .venv/bin/python benchmarks/vs_handwritten.py [--batch 8] [--channels 256] [--size 14]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import attncc
from attncc.api import to_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from paper_refs.cbam import CBAMReference
from paper_refs.eca import ECAReference
from paper_refs.se import SEReference

CASES = {"se": SEReference, "eca": ECAReference, "cbam": CBAMReference}


def ort_session(model):
    """An onnxruntime session on one thread, like torch here, with all graph optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def median_time(fns: dict[str, Callable[[], object]], repeats: int, inner: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():  # interleaved: drift hits every contender alike
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--size", type=int, default=14)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--inner", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    shape = (args.batch, args.channels, args.size, args.size)
    x = torch.randn(shape)
    print(f"input {list(shape)}, float32, CPU, 1 thread; ratios to the hand-written module\n")
    print(f"{'spec':<6} {'attncc torch':>13} {'onnxruntime':>12}")
    for name, ref_cls in CASES.items():
        block = attncc.load(name, C=args.channels).eval()
        ref = ref_cls(args.channels).eval()
        ref.load_state_dict(block.state_dict(), strict=True)
        sess = ort_session(to_onnx(block))
        xn = x.numpy()
        with torch.no_grad():
            assert torch.allclose(block(x), ref(x), rtol=1e-4, atol=1e-5)
            assert np.allclose(sess.run(None, {"x": xn})[0], ref(x).numpy(), 1e-4, 1e-5)
            runs = {"ref": lambda m=ref: m(x), "attncc": lambda m=block: m(x),
                    "ort": lambda s=sess, a=xn: s.run(None, {"x": a})}
            t = median_time(runs, args.repeats, args.inner)
        print(f"{name:<6} {t['attncc'] / t['ref']:>13.2f} {t['ort'] / t['ref']:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
