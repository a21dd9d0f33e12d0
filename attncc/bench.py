"""`attncc bench`: attncc's backends against peer modules on the same weights, in one run.

For each spec and input shape the contenders are attncc's generated PyTorch module (eager and,
with `compile_=True`, under `torch.compile`) and its ONNX graph in onnxruntime, and the peers:
the independent reference module from `tests/paper_refs` (importable when running from the
repository; an installed wheel has none, and the bench then times attncc's backends alone)
and timm's module where timm is importable and has the block. Each peer runs eager, under
`torch.compile` (with `compile_=True`) and exported by `torch.onnx.export` into onnxruntime;
a peer whose export fails is reported `n/a` with the reason.

Timings interleave the contenders (every repetition runs each contender once, in turn), so
drift on a shared machine hits every column alike; each contender is warmed up first and
reported as the median with min-max. Peak memory is the largest sum of bytes live in torch's
CPU allocations during one call, read from `torch.profiler` allocation events (onnxruntime
allocates outside torch, so its column is n/a). The memory-traffic lower bound is the cost
model's `bytes_moved` summed over the IR, over the bandwidth of a NumPy copy measured at the
start of the run.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# what the README table shows by default (`--library` runs every bundled spec)
DEFAULT_SPECS = ("se", "eca", "cbam", "gc", "nonlocal")

# peers from tests/paper_refs: spec -> (module, builder from the block's sizes/hyperparameters)
_REFS: dict[str, tuple[str, Callable[[Any, Mapping[str, Any]], Any]]] = {
    "se": ("se", lambda m, hp: m.SEReference(hp["C"], r=hp["r"])),
    "eca": ("eca", lambda m, hp: m.ECAReference(hp["C"], gamma=hp.get("gamma", 2),
                                                b=hp.get("b", 1))),
    "cbam": ("cbam", lambda m, hp: m.CBAMReference(hp["C"], r=hp["r"], k=hp["k"])),
    "gc": ("gc", lambda m, hp: m.GCReference(hp["C"], r=hp["r"])),
    "sk": ("sk", lambda m, hp: m.SKReference(hp["C"], groups=hp["groups"], r=hp["r"],
                                             L=hp["L"])),
    "nonlocal": ("nonlocal_block", lambda m, hp: m.NonLocalReference(hp["C"], r=hp["r"],
                                                                     sub=hp["sub"])),
    "danet": ("danet", lambda m, hp: m.DANetReference(hp["C"], r=hp["r"])),
    "vit": ("vit", lambda m, hp: m.MHSAReference(hp["D"], heads=hp["heads"])),
    "eanet": ("eanet", lambda m, hp: m.EANetReference(hp["C"], m=hp["m"])),
    "scse": ("scse", lambda m, hp: m.SCSEReference(hp["C"], reduction_ratio=hp["r"])),
    "bam": ("bam", lambda m, hp: m.BAMReference(hp["C"], r=hp["r"], d=hp["d"])),
    "gsop": ("gsop", lambda m, hp: m.GSoPReference(hp["C"], d=hp["d"])),
    "a2net": ("a2net", lambda m, hp: m.A2NetReference(hp["C"], r=hp["r"])),
    "dnl": ("dnl", lambda m, hp: m.DNLReference(hp["C"], r=hp["r"])),
    "gala": ("gala", lambda m, hp: m.GALAReference(hp["C"], r=hp["r"])),
    "aia": ("aia", lambda m, hp: m.BilinearAttention(hp["C"], r=hp["r"])),
    "ann": ("ann", lambda m, hp: m.APNB(hp["C"], hp["C"], hp["key"], hp["value"], 0.05,
                                        tuple(hp[s] for s in ("s1", "s2", "s3", "s4")))),
    "attgate": ("attgate", lambda m, hp: m.GridAttentionBlock2DReference(hp["C"], hp["Cg"],
                                                                         hp["inter"])),
    "ccnet": ("ccnet", lambda m, hp: m.CCNetReference(hp["C"], r=hp["r"], R=hp["R"])),
    "condconv": ("condconv", lambda m, hp: m.CondConvReference(hp["C"], hp["out"], hp["k"],
                                                               hp["experts"])),
    "coordatt": ("coordatt", lambda m, hp: m.CoordAttReference(hp["C"], r=hp["r"],
                                                               min_width=hp["min_width"])),
    "dcn": ("dcn", lambda m, hp: m.DCNReference(hp["C"], hp["out"], hp["k"], hp["dilation"],
                                                hp["modulated"], hp["bias"])),
    # the hidden width M is the spec's (the paper's C // r, or the port's one wider)
    "dynconv": ("dynconv", lambda m, hp: m.DynamicConv2dReference(
        hp["C"], hp["out"], hp["k"], K=hp["kernels"], temperature=hp["tau"], hidden=hp["M"])),
    "emanet": ("emanet", lambda m, hp: m.EMAUReference(hp["C"], hp["k"],
                                                       stage_num=hp["stages"])),
    "encnet": ("encnet", lambda m, hp: m.EncModuleReference(hp["C"], hp["width"], hp["codes"],
                                                            official=hp["res"] == 1)),
    "fcanet": ("fcanet", lambda m, hp: m.FcaNetReference(
        hp["C"], hp["H"], hp["W"], reduction=hp["r"],
        freq_sel_method=f"{('top', 'low', 'bot')[hp['freq']]}{hp['n']}")),
    "gct": ("gct", lambda m, hp: m.GCTReference(hp["C"], eps=hp["eps"])),
    "general": ("general", lambda m, hp: m.GeneralReference(hp["C"], r=hp["r"], k=hp["k"],
                                                            L=hp["L"])),
    "general_video": ("general", lambda m, hp: m.GeneralReference(
        hp["C"], r=hp["r"], k=hp["k"], L=hp["L"], video=True, rt=hp["rt"], kt=hp["kt"])),
    "genet": ("genet", lambda m, hp: m.GatherExciteReference(extent=hp["e"])),
    "glimpse": ("glimpse", lambda m, hp: m.GlimpseReference(
        hp["C"], hp["gh"], hp["gw"], hp["scales"], hp["extent"], hp["hidden"])),
    "glore": ("glore", lambda m, hp: m.GloReReference(hp["C"], nodes=hp["nodes"],
                                                      state=hp["state"])),
    "gltr": ("gltr", lambda m, hp: m.GLTRReference(hp["C"])),
    "hamnet": ("hamnet", lambda m, hp: m.HamburgerReference(hp["C"], r=hp["r"],
                                                            steps=hp["steps"])),
    "hard": ("hard", lambda m, hp: m.HardAttentionReference(hp["D"], hp["E"], hp["att"])),
    "highway": ("highway", lambda m, hp: m.HighwayReference(hp["D"], hp["bias_init"])),
    "lrnet": ("lrnet", lambda m, hp: m.LocalRelationReference(hp["C"], hp["m"], hp["k"],
                                                              hp["kw"])),
    "ocr": ("ocr", lambda m, hp: m.OCRReference(hp["C"], key=hp["key"])),
    "psanet": ("psanet", lambda m, hp: m.PSA(hp["C"], hp["mid"], hp["H"], hp["W"])),
    "ran": ("ran", lambda m, hp: m.AttentionModule_stage2(hp["C"], hp["C"])),
    "rga": ("rga", lambda m, hp: m.RGAModule(hp["C"], hp["H"] * hp["W"],
                                             cha_ratio=hp["cha_ratio"],
                                             spa_ratio=hp["spa_ratio"],
                                             down_ratio=hp["down_ratio"])),
    "rstan": ("rstan", lambda m, hp: m.RSTANReference(hp["C"], hp["E"], hp["att"],
                                                      hp["gamma"])),
    # the bundled block SAN is the pairwise variant (sa_type 0)
    "san": ("san", lambda m, hp: m.SAMReference(0, hp["C"], hp["C"] // hp["rel"],
                                                hp["C"] // hp["mid"], hp["share"], hp["k"],
                                                hp["kw"])),
    "sasa": ("sasa", lambda m, hp: m.SASAReference(hp["C"], hp["heads"], hp["k"], hp["kw"])),
    "scacnn": ("scacnn", lambda m, hp: m.SCACNNReference(hp["C"], hp["E"], k=hp["k"])),
    "scnet": ("scnet", lambda m, hp: m.SCConvReference(hp["C"], pool=hp["pool"])),
    "softatt": ("softatt", lambda m, hp: m.SoftAttentionReference(hp["D"], hp["E"],
                                                                  hp["att"])),
    "spnet": ("spnet", lambda m, hp: m.SPNetReference(hp["C"])),
    "srm": ("srm", lambda m, hp: m.SRMReference(hp["C"], eps=hp["eps"])),
    "sta": ("sta", lambda m, hp: m.STAReference(hp["K"])),
    "stalstm": ("stalstm", lambda m, hp: m.STALSTMReference(hp["J"], hp["D"], hp["E"],
                                                            hp["att"])),
    "stgcn": ("stgcn", lambda m, hp: m.STGCNReference(hp["C"], hp["P"])),
    "stn": ("stn", lambda m, hp: m.STNReference(hp["C"], hp["width"], hp["hidden"])),
    "triplet": ("triplet", lambda m, hp: m.TripletReference(k=hp["k"])),
    "simam": ("simam", lambda m, hp: m.SimAMReference(lam=hp["lam"])),
}

def _reshaped(names: Mapping[str, str] | None = None) -> Callable[[Any, dict[str, Any], Any],
                                                                   dict[str, Any]]:
    """A converter: attncc's state with each layer prefix renamed by `names` (`layer.leaf` ->
    `names[layer].leaf`) and each tensor reshaped to the reference's shape of it."""
    names = dict(names or {})

    def convert(mod: Any, state: dict[str, Any], ref: Any) -> dict[str, Any]:
        want = ref.state_dict()
        out = {}
        for key, value in state.items():
            layer, _, leaf = key.rpartition(".")
            name = f"{names[layer]}.{leaf}" if layer in names else key
            out[name] = value.reshape(want[name].shape) if name in want else value
        return out

    return convert


# where the reference's state_dict is not attncc's (nor its module's one-argument
# `from_compiled` of it): spec -> (reference module, attncc's state, reference) -> its state
_REF_STATE: dict[str, Callable[[Any, dict[str, Any], Any], dict[str, Any]]] = {
    # the code's 1-D convs are 2-D [O, I, 1, 1] and named as in the authors' CoordAtt
    "coordatt": _reshaped({"f.conv": "conv1", "f.batch_norm": "bn1", "a_h": "conv_h",
                           "a_w": "conv_w"}),
    "emanet": _reshaped(),  # the code's bases buffer `mu` is [1, C, K], attncc's [C, K]
    "gct": _reshaped(),  # the code's alpha, gamma, beta are [1, C, 1, 1], attncc's [C]
    # the module's converter reads the target shapes off the reference
    "general": lambda mod, state, ref: mod.from_compiled(state, ref),
    "general_video": lambda mod, state, ref: mod.from_compiled(state, ref),
}


# peers from timm (never a dependency): spec -> builder; weights are loaded by position
# (attncc's parameters and buffers in order, reshaped), then checked against attncc's output
def _timm_cbam(t: Any, hp: Mapping[str, Any]) -> Any:
    cbam = importlib.import_module("timm.layers.cbam")  # not re-exported by timm.layers
    return cbam.CbamModule(hp["C"], rd_channels=hp["C"] // hp["r"],
                           spatial_kernel_size=hp["k"], mlp_bias=True)


_TIMM: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "se": lambda t, hp: t.layers.SEModule(hp["C"], rd_channels=hp["C"] // hp["r"]),
    "eca": lambda t, hp: t.layers.EcaModule(hp["C"], gamma=hp.get("gamma", 2),
                                            beta=hp.get("b", 1)),
    "cbam": _timm_cbam,
    "gc": lambda t, hp: t.layers.GlobalContext(hp["C"], fuse_add=True, fuse_scale=False,
                                               rd_channels=hp["C"] // hp["r"],
                                               init_last_zero=True),
}

# where timm's layout differs from the paper's (and attncc's): timm's CBAM pools
# [mean, max] into its spatial conv where the paper (and the spec) stacks [max, mean]
_TIMM_FIX: dict[str, Callable[[str, Any], Any]] = {
    "cbam": lambda key, v: v.flip(1) if key == "spatial.conv.conv.weight" else v,
}


@dataclass
class Result:
    """One contender at one shape."""

    who: str  # attncc | ref | timm
    backend: str  # eager | compile | onnx
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    peak_mib: float | None = None
    compile_s: float | None = None
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.who} {self.backend}"


@dataclass
class Row:
    """Every contender for one spec at one input shape, with the ratios the issue asks for."""

    spec: str
    shapes: dict[str, list[int]]
    results: list[Result] = field(default_factory=list)
    bytes_moved: int | None = None
    bound_ms: float | None = None
    ratio_best: float | None = None  # attncc's best / the best peer configuration
    ratio_eager: float | None = None  # attncc eager / the best peer eager
    ratio_best_tuned: float | None = None  # the same two under the tuned allocator
    ratio_eager_tuned: float | None = None
    winner: str = ""  # attncc's fastest backend
    note: str = ""


# ---- environment ----
def allocator_settings() -> dict[str, str]:
    """The memory allocator the run uses: torch on CPU allocates through the C library's
    malloc (or whatever LD_PRELOAD substitutes); these variables tune glibc's."""
    keys = ("LD_PRELOAD", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
            "MALLOC_TOP_PAD_", "MALLOC_CONF", "TCMALLOC_RELEASE_RATE", "OMP_NUM_THREADS")
    out = {k: os.environ[k] for k in keys if k in os.environ}
    libc = " ".join(platform.libc_ver()).strip() or "unknown libc"
    out["allocator"] = ("LD_PRELOAD " + os.environ["LD_PRELOAD"] if "LD_PRELOAD" in os.environ
                        else f"system malloc ({libc}), default settings unless listed")
    return out


JEMALLOC = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/"
            "libjemalloc.so.2", "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")


def tuned_allocator_env() -> tuple[dict[str, str], str]:
    """(environment, description) of the tuned-allocator run for the peers.

    Hand-written blocks lose most where each call's big temporaries go back to the kernel and
    are page-faulted in again; a tuned allocator keeps freed memory. jemalloc (preloaded, its
    decay off: freed pages are kept) where installed (`make bench-env` installs Debian's
    libjemalloc2), else glibc with its mmap threshold at the 32 MiB maximum and no trimming
    (allocations above 32 MiB still come from mmap there).
    """
    env = dict(os.environ)
    lib = next((p for p in JEMALLOC if Path(p).is_file()), None)
    if lib is not None:
        env["LD_PRELOAD"] = lib
        env["MALLOC_CONF"] = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
        return env, f"jemalloc ({lib}), MALLOC_CONF={env['MALLOC_CONF']}"
    tunables = ("glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold="
                "68719476736:glibc.malloc.top_pad=67108864")
    env["GLIBC_TUNABLES"] = tunables
    return env, f"glibc malloc, GLIBC_TUNABLES={tunables}"


def tuned_run(jobs: Sequence[tuple[str, Mapping[str, Sequence[int]]]],
              options: Mapping[str, Any]) -> tuple[list[list[Result]], str]:
    """Every contender's results from a child process under the tuned allocator, per job in
    order (`who` gets a " +malloc" suffix), and the allocator's description."""
    import subprocess
    import tempfile

    env, what = tuned_allocator_env()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tuned.json"
        job = json.dumps({"jobs": [[spec, {k: list(v) for k, v in shapes.items()}]
                                   for spec, shapes in jobs],
                          "options": dict(options), "out": str(out)})
        # the exporters print graphs from C++ straight to the file descriptors: keep them out
        # of the report, and show the end of them only if the child fails
        done = subprocess.run([sys.executable, "-c", "from attncc.bench import _child; _child()",
                               job], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, errors="replace", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the tuned-allocator run failed:\n{done.stderr[-2000:]}")
        rows = json.loads(out.read_text())["rows"]
    return [[Result(**{**r, "who": r["who"] + TUNED}) for r in row["results"]]
            for row in rows], what


def _child() -> None:
    """The tuned-allocator child of `tuned_run` (argv[1]: the job as JSON)."""
    job = json.loads(sys.argv[1])
    rows, meta = run_jobs([tuple(j) for j in job["jobs"]], progress=False, **job["options"])
    Path(job["out"]).write_text(to_json(rows, meta))


def measure_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Memory bandwidth in bytes/s: a NumPy copy of `mib` MiB reads and writes each byte once."""
    import numpy as np

    src = np.ones(mib * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best


# ---- measuring ----
@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: the profiler's C++ side (kineto) writes
    `USDT: ... profiler_start/stop` lines there on every start and stop, past Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with Path(os.devnull).open("wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes live in torch CPU allocations made during one call (torch.profiler events)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    allocs = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        ev = stack.pop()
        stack.extend(ev.children)
        if ev.tag == _EventType.Allocation:
            allocs.append((ev.start_time_ns, ev.extra_fields.alloc_size))
    cur = peak = 0
    for _, size in sorted(allocs):
        cur += size
        peak = max(peak, cur)
    return peak


def time_interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int,
                     inner: int | None = None) -> dict[str, list[float]]:
    """Seconds per call: `repeats` rounds, each running every contender `inner` times in turn.

    `inner` None picks, per contender, enough calls to take about 20 ms.
    """
    inners: dict[str, int] = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):
            fn()
        per = (time.perf_counter() - t0) / max(1, warmup)
        inners[name] = inner or max(1, min(1000, int(0.02 / max(per, 1e-7))))
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            k = inners[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
    return samples


def ort_session(model: Any) -> Any:
    """onnxruntime on as many threads as torch uses, all graph optimisations."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


EXPORT_SECONDS = 60  # a peer whose Python loops unroll into a huge graph is reported n/a


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after `seconds`; a no-op elsewhere."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"gave up after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def export_peer(module: Any, inputs: Sequence[Any], names: Sequence[str],
                seconds: float = EXPORT_SECONDS) -> bytes:
    """torch.onnx.export of a peer module (TorchScript exporter first, then dynamo), each
    given `seconds` (PSANet's reference builds its mask in a Python loop over positions)."""
    import torch

    errors = []
    for dynamo in (False, True):
        buf = io.BytesIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                    io.StringIO()), torch.no_grad(), warnings.catch_warnings(), \
                    _time_limit(seconds):
                warnings.simplefilter("ignore")
                torch.onnx.export(module, tuple(inputs), buf, input_names=list(names),
                                  opset_version=18, dynamo=dynamo)
            return buf.getvalue()
        except Exception as err:  # any exporter failure is reported as n/a
            first = str(err).splitlines()[0][:120] if str(err) else ""
            errors.append(f"{'dynamo' if dynamo else 'torchscript'}: {type(err).__name__}: {first}")
    raise RuntimeError("; ".join(errors))


# ---- peers ----
def _repo_tests() -> Path | None:
    tests = Path(__file__).resolve().parents[1] / "tests"
    return tests if (tests / "paper_refs").is_dir() else None


def reference_peer(spec: str, hp: Mapping[str, Any], state: Mapping[str, Any]) -> tuple[Any, str]:
    """(module or None, why not) for the tests/paper_refs module of `spec`."""
    if spec not in _REFS:
        return None, "no reference module listed for this spec"
    tests = _repo_tests()
    if tests is None:
        return None, "tests/paper_refs not importable (installed package)"
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    modname, build = _REFS[spec]
    try:
        mod = importlib.import_module(f"paper_refs.{modname}")
        ref = build(mod, hp)
        convert = getattr(mod, "from_compiled", None)
        if spec in _REF_STATE:
            state = _REF_STATE[spec](mod, dict(state), ref)
        elif convert is not None and len(inspect.signature(convert).parameters) == 1:
            state = convert(dict(state))
        ref.load_state_dict(state, strict=True)
    except Exception as err:  # the peer is skipped with the reason
        return None, f"reference unavailable: {type(err).__name__}: {err}"
    return ref.eval(), ""


def timm_peer(spec: str, hp: Mapping[str, Any], state: Mapping[str, Any]) -> tuple[Any, str]:
    """(module or None, why not) for timm's module of `spec`, weights loaded by position."""
    if spec not in _TIMM:
        return None, "timm has no module listed for this spec"
    try:
        import timm.layers  # noqa: F401 - the builders read timm.layers
    except ImportError:
        return None, "timm not importable (make bench-env)"
    try:
        peer = _TIMM[spec](sys.modules["timm"], hp)
        theirs = peer.state_dict()
        ours = [v for v in state.values() if v.is_floating_point() or v.numel() > 1]
        mine = [k for k, v in theirs.items() if v.is_floating_point() or v.numel() > 1]
        if len(ours) != len(mine):
            raise ValueError(f"{len(ours)} tensors in attncc's state, {len(mine)} in timm's")
        new = dict(theirs)
        for k, v in zip(mine, ours, strict=True):
            if v.numel() != theirs[k].numel():
                raise ValueError(f"`{k}` has {theirs[k].numel()} values, attncc's {v.numel()}")
            new[k] = v.reshape(theirs[k].shape).to(theirs[k].dtype)
        fix = _TIMM_FIX.get(spec)
        if fix is not None:
            new = {k: fix(k, v) for k, v in new.items()}
        peer.load_state_dict(new)
    except Exception as err:  # the peer is skipped with the reason
        return None, f"timm module unavailable: {type(err).__name__}: {err}"
    return peer.eval(), ""


# ---- one spec ----
def _sizes_of(ir: Any, shapes: Mapping[str, Sequence[int]]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for n in ir.inputs:
        nd = ir.node(n)
        for d, s in zip(nd.out.dims, shapes[nd.name], strict=True):
            if d not in nd.out.bcast:
                sizes[d] = int(s)
    return sizes


def traffic_bytes(ir: Any, inputs: Mapping[str, Any], state: Mapping[str, Any]) -> int:
    """The cost model's bytes moved over the IR at these inputs (every dim's size read off
    one run of the NumPy reference)."""
    from attncc.backends.numpy_ref import evaluate

    env = evaluate(ir, {k: v.numpy() for k, v in inputs.items()},
                   {k: v.numpy() for k, v in state.items()})
    bind: dict[str, int] = {}
    for n, value in env.items():
        t = ir.node(n).out
        if ir.node(n).op == "param" or value.ndim != len(t.dims):
            continue
        for d, s in zip(t.dims, value.shape, strict=True):
            if d not in t.bcast:
                bind.setdefault(d, int(s))
    total = 0
    for n in ir.topo():
        if ir.node(n).op not in ("input", "param"):
            total += ir.cost(n, bind).bytes_moved
    return total


def _close(a: Any, b: Any) -> bool:
    import torch

    a = a[0] if isinstance(a, tuple) else a
    b = b[0] if isinstance(b, tuple) else b
    return bool(torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=1e-3, atol=1e-4))


def bench_spec(spec: str, shapes: Mapping[str, Sequence[int]], *, hyper: Mapping[str, Any],
               repeats: int, warmup: int, compile_: bool, onnx: bool, bandwidth: float,
               disable: Sequence[str] = (), inner: int | None = None, seed: int = 0,
               progress: Callable[[str], None] = lambda s: None, ours: bool = True) -> Row:
    """Time every contender for one spec at one set of input shapes (`ours=False`: the peers
    only, still checked against attncc's output)."""
    import numpy as np
    import torch

    from attncc.api import randomize_, to_onnx
    from attncc.backends.torch_module import build_module
    from attncc.compiler import compile_ir, read_source

    src = read_source(spec)
    ir = compile_ir(src, dict(hyper), {k: tuple(v) for k, v in shapes.items()},
                    disable=tuple(disable))
    module = randomize_(build_module(ir, src.text), seed).eval()
    g = torch.Generator().manual_seed(seed)
    names = [ir.node(n).name for n in ir.inputs]
    inputs = {k: torch.randn(tuple(shapes[k]), generator=g) for k in names}
    args = [inputs[k] for k in names]
    state = module.state_dict()
    hp = {**{d: s for d, s in ir.dims.items() if s is not None}, **ir.hyper}
    row = Row(spec=spec, shapes={k: list(v) for k, v in shapes.items()})
    with torch.no_grad():
        expected = module(*args)

    # contenders: (who, backend) -> zero-argument callable
    fns: dict[tuple[str, str], Callable[[], Any]] = {}
    results: dict[tuple[str, str], Result] = {}

    def add_torch(who: str, m: Any) -> None:
        results[(who, "eager")] = Result(who, "eager")
        fns[(who, "eager")] = lambda: m(*args)
        if compile_:
            progress(f"{spec}: torch.compile {who}")
            r = Result(who, "compile")
            results[(who, "compile")] = r
            try:
                cm = torch.compile(m)
                t0 = time.perf_counter()
                cm(*args)
                r.compile_s = time.perf_counter() - t0
                fns[(who, "compile")] = lambda: cm(*args)
            except Exception as err:  # reported as n/a
                r.note = f"n/a: torch.compile failed: {type(err).__name__}: {err}"[:200]

    def add_ort(who: str, make: Callable[[], Any]) -> None:
        if not onnx:
            return
        progress(f"{spec}: onnxruntime {who}")
        r = Result(who, "onnx", note="peak memory n/a (onnxruntime allocates outside torch)")
        results[(who, "onnx")] = r
        try:
            t0 = time.perf_counter()
            sess = ort_session(make())
            r.compile_s = time.perf_counter() - t0
            feed = {k: v.numpy() for k, v in inputs.items()}
            in_names = [i.name for i in sess.get_inputs()]
            feed = dict(zip(in_names, feed.values(), strict=True))
            if not np.allclose(sess.run(None, feed)[0], expected.numpy()
                               if not isinstance(expected, tuple) else expected[0].numpy(),
                               rtol=1e-3, atol=1e-4):
                r.note = "n/a: onnxruntime output differs from attncc's"
                return
            fns[(who, "onnx")] = lambda: sess.run(None, feed)
        except Exception as err:  # reported as n/a
            r.note = f"n/a: {type(err).__name__}: {err}"[:240]

    if ours:
        add_torch("attncc", module)
        add_ort("attncc", lambda: to_onnx(module))
    for who, finder in (("ref", reference_peer), ("timm", timm_peer)):
        peer, why = finder(spec, hp, state)
        if peer is None:
            row.note += f"{who}: {why}. "
            continue
        with torch.no_grad():
            if not _close(peer(*args), expected):
                row.note += f"{who}: output differs from attncc's on the same weights. "
                continue
        add_torch(who, peer)
        add_ort(who, lambda p=peer: export_peer(p, args, names))

    progress(f"{spec}: timing {len(fns)} contenders")
    with torch.no_grad():
        samples = time_interleaved({f"{k[0]} {k[1]}": f for k, f in fns.items()}, repeats,
                                   warmup, inner)
        for key, fn in fns.items():
            r = results[key]
            s = samples[f"{key[0]} {key[1]}"]
            r.median_ms = statistics.median(s) * 1e3
            r.min_ms, r.max_ms = min(s) * 1e3, max(s) * 1e3
            if key[1] != "onnx":
                r.peak_mib = peak_bytes(fn) / 2**20
    row.results = list(results.values())
    try:
        row.bytes_moved = traffic_bytes(ir, inputs, state)
        row.bound_ms = row.bytes_moved / bandwidth * 1e3
    except Exception as err:  # a bound we cannot compute is left out
        row.note += f"traffic bound n/a: {type(err).__name__}. "
    ratios(row)
    return row


TUNED = " +malloc"  # the suffix of contenders timed under the tuned allocator


def ratios(row: Row) -> None:
    """attncc's best / best peer, attncc eager / best peer eager, and attncc's winner, among
    the contenders of one process (the default allocator); the same under the tuned one."""
    timed = [r for r in row.results if r.median_ms is not None]
    for suffix in ("", TUNED):
        group = [r for r in timed if r.who.endswith(TUNED) == bool(suffix)]
        ours = [r for r in group if r.who == "attncc" + suffix]
        peers = [r for r in group if r.who != "attncc" + suffix]
        if not ours:
            continue
        best = min(ours, key=lambda r: r.median_ms)
        eager = [r for r in ours if r.backend == "eager"]
        peer_eager = [r.median_ms for r in peers if r.backend == "eager"]
        ratio_best = best.median_ms / min(r.median_ms for r in peers) if peers else None
        ratio_eager = eager[0].median_ms / min(peer_eager) if eager and peer_eager else None
        if suffix:
            row.ratio_best_tuned, row.ratio_eager_tuned = ratio_best, ratio_eager
        else:
            row.winner, row.ratio_best, row.ratio_eager = best.backend, ratio_best, ratio_eager


# ---- reports ----
def _fmt_ms(r: Result | None) -> str:
    if r is None:
        return "—"
    if r.median_ms is None:
        return "n/a"
    return f"{r.median_ms:.3g} ({r.min_ms:.3g}–{r.max_ms:.3g})"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _versus(row: Row, backend: str, field: str, fmt: str) -> str:
    """attncc's `field` of one backend (peak memory, torch.compile time) / the lowest of the
    peers in the same process; "—" where attncc has none."""
    mine = next((getattr(r, field) for r in row.results
                 if r.who == "attncc" and r.backend == backend), None)
    theirs = [getattr(r, field) for r in row.results if r.who in ("ref", "timm")
              and r.backend == backend and getattr(r, field) is not None]
    if mine is None:
        return "—"
    return f"{mine:{fmt}} / " + (f"{min(theirs):{fmt}}" if theirs else "—")


def markdown(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    """One line per spec and shape: median ms (min–max) of each contender, then the ratios."""
    cols = [(w + t, b) for t in ("", TUNED) for w in ("attncc", "ref", "timm")
            for b in ("eager", "compile", "onnx")
            if any(r.who == w and r.backend == b for row in rows for r in row.results)]
    compiled = any(r.backend == "compile" and r.compile_s is not None
                   for row in rows for r in row.results)
    tuned = any(row.ratio_best_tuned is not None for row in rows)
    head = ["block", "input", *[f"{w} {b}" for w, b in cols], "attncc wins with",
            "attncc ÷ best peer", "eager ÷ peer eager",
            *(["+malloc: attncc ÷ best peer", "+malloc: eager ÷ peer eager"] if tuned else []),
            "peak MiB attncc / peer",
            "traffic bound", *(["torch.compile s attncc / peer"] if compiled else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        by = {(r.who, r.backend): r for r in row.results}
        shape = " ".join("×".join(map(str, v)) for v in row.shapes.values())
        best = min((r.median_ms for r in row.results if r.who == "attncc"
                    and r.median_ms is not None), default=None)
        bound = "—" if row.bound_ms is None else f"{row.bound_ms:.3g} ms" + (
            f" (attncc ×{best / row.bound_ms:.1f})" if best is not None and row.bound_ms > 0
            else "")
        cells = [f"`{row.spec}`", shape, *[_fmt_ms(by.get(c)) for c in cols],
                 row.winner or "—", _ratio(row.ratio_best), _ratio(row.ratio_eager),
                 *([_ratio(row.ratio_best_tuned), _ratio(row.ratio_eager_tuned)]
                   if tuned else []), _versus(row, "eager", "peak_mib", ".3g"), bound]
        if compiled:
            cells.append(_versus(row, "compile", "compile_s", ".1f"))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Median ms (min–max) over {meta['repeats']} interleaved repetitions; "
                 f"{meta['threads']} thread(s), float32, CPU ({meta['cpu']}); torch "
                 f"{meta['torch']}, onnxruntime {meta['onnxruntime']}; allocator: "
                 f"{meta['allocator']['allocator']}. Peak memory: torch.profiler allocation "
                 f"events. Traffic bound: cost-model bytes over a measured "
                 f"{meta['bandwidth_gbs']:.1f} GB/s, and how many times that attncc's best "
                 f"backend takes."
                 + (f" `+malloc`: every contender again, in another process, under a tuned "
                    f"allocator: {meta['allocator_tuned']}; ratios compare contenders under "
                    f"the same allocator." if meta.get("allocator_tuned") else ""))
    return "\n".join(lines) + "\n"


def summary(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    """The README's compact table: per spec and shape, attncc's best contender against the
    best peer's (median ms), the ratios under both allocators, peak memory and the bound."""
    lines = ["| block | input | attncc best | best peer | attncc ÷ best peer | same, tuned "
             "malloc | eager ÷ peer eager | peak MiB attncc / peer | traffic bound |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        timed = [r for r in row.results if r.median_ms is not None and not r.who.endswith(TUNED)]
        ours = [r for r in timed if r.who == "attncc"]
        peers = [r for r in timed if r.who != "attncc"]
        best = min(ours, key=lambda r: r.median_ms, default=None)
        peer = min(peers, key=lambda r: r.median_ms, default=None)
        cells = [
            f"`{row.spec}`", " ".join("×".join(map(str, v)) for v in row.shapes.values()),
            f"{best.median_ms:.3g} ms {best.backend}" if best else "—",
            f"{peer.median_ms:.3g} ms {peer.label}" if peer else "—",
            _ratio(row.ratio_best), _ratio(row.ratio_best_tuned), _ratio(row.ratio_eager),
            _versus(row, "eager", "peak_mib", ".3g"),
            f"{row.bound_ms:.3g} ms" if row.bound_ms is not None else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row], path: str | Path) -> str:
    """Horizontal bars, one group per spec and shape: attncc's best ÷ the best peer and
    attncc eager ÷ the best peer eager (log scale; the issue's targets 0.8 and 1.1 drawn);
    returns a note when skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not importable: no plot written"
    shown = [row for row in rows if row.ratio_best is not None]
    if not shown:
        return "no row has a peer: no plot written"
    labels = [f"{row.spec} " + " ".join("×".join(map(str, v)) for v in row.shapes.values())
              for row in shown]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.32 * len(shown)))
    ys = range(len(shown))
    ax.barh([y - 0.2 for y in ys], [row.ratio_best for row in shown], 0.4,
            label="attncc best ÷ best peer")
    ax.barh([y + 0.2 for y in ys], [row.ratio_eager or 0 for row in shown], 0.4,
            label="attncc eager ÷ best peer eager")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(0.8, color="tab:green", linewidth=0.8, linestyle="--", label="target 0.8")
    ax.axvline(1.1, color="tab:orange", linewidth=0.8, linestyle="--", label="target 1.1")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time ratio (below 1: attncc faster)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


# ---- driver ----
def default_shapes(spec: str, hyper: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    from attncc.compiler import example_shapes, read_source

    return example_shapes(read_source(spec), None, dict(hyper))


def run(specs: Sequence[str], shape_sets: Sequence[Mapping[str, Sequence[int]]] = (), *,
        hyper: Mapping[str, Any] | None = None, repeats: int = 15, warmup: int = 3,
        compile_: bool = False, onnx: bool = True, threads: int | None = None,
        disable: Sequence[str] = (), inner: int | None = None, progress: bool = True,
        tuned_allocator: bool = False) -> tuple[list[Row], dict[str, Any]]:
    """Benchmark `specs` at `shape_sets` (default: each spec's `example`).

    `tuned_allocator` times every contender again in a child process under a tuned memory
    allocator (`tuned_allocator_env`); those results join each row as `attncc +malloc`,
    `ref +malloc`, ..., with their own ratios (`ratio_best_tuned`, `ratio_eager_tuned`).
    """
    jobs = []
    for spec in specs:
        sets = list(shape_sets) or [default_shapes(spec, hyper or {})]
        jobs += [(spec, s) for s in sets]
    return run_jobs(jobs, hyper=hyper, repeats=repeats, warmup=warmup, compile_=compile_,
                    onnx=onnx, threads=threads, disable=disable, inner=inner,
                    progress=progress, tuned_allocator=tuned_allocator)


def run_jobs(jobs: Sequence[tuple[str, Mapping[str, Sequence[int]]]], *,
             hyper: Mapping[str, Any] | None = None, repeats: int = 15, warmup: int = 3,
             compile_: bool = False, onnx: bool = True, threads: int | None = None,
             disable: Sequence[str] = (), inner: int | None = None, progress: bool = True,
             tuned_allocator: bool = False, ours: bool = True) -> tuple[list[Row], dict[str, Any]]:
    """`run` over explicit (spec, input shapes) jobs."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    bar = Progress(enabled=progress)
    bar.total = len(jobs)
    bar.note("measuring memory bandwidth")
    bandwidth = measure_bandwidth()
    meta: dict[str, Any] = {
        "threads": torch.get_num_threads(), "repeats": repeats, "warmup": warmup,
        "torch": torch.__version__, "onnxruntime": _version("onnxruntime"),
        "timm": _version("timm"), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "allocator": allocator_settings(),
        "bandwidth_gbs": bandwidth / 1e9,
        "peak_memory": "torch.profiler allocation events (bytes live in torch CPU allocations "
                       "made during one call)",
        "disabled_passes": list(disable),
    }
    rows = []
    for spec, shapes in jobs:
        bar.step(f"{spec} " + " ".join("×".join(map(str, v)) for v in shapes.values()))
        try:
            rows.append(bench_spec(spec, shapes, hyper=hyper or {}, repeats=repeats,
                                   warmup=warmup, compile_=compile_, onnx=onnx,
                                   bandwidth=bandwidth, disable=disable, inner=inner,
                                   progress=bar.note, ours=ours))
        except Exception as err:  # one spec's failure must not end the run
            rows.append(Row(spec=spec, shapes={k: list(v) for k, v in shapes.items()},
                            note=f"failed: {type(err).__name__}: {err}"[:300]))
    bar.done()
    if tuned_allocator:
        if progress:
            sys.stderr.write("timing the peers again under a tuned allocator\n")
        options = {"hyper": dict(hyper or {}), "repeats": repeats, "warmup": warmup,
                   "compile_": compile_, "onnx": onnx, "threads": meta["threads"],
                   "disable": list(disable), "inner": inner}
        per_job, what = tuned_run(jobs, options)
        meta["allocator_tuned"] = what
        for row, extra in zip(rows, per_job, strict=True):
            row.results += extra
            ratios(row)
    return rows, meta


def to_json(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    return json.dumps({"meta": dict(meta), "rows": [asdict(r) for r in rows]}, indent=2)


def from_json(text: str) -> tuple[list[Row], dict[str, Any]]:
    """Rows and meta back from `to_json`'s text (to redraw the reports of a saved run)."""
    data = json.loads(text)
    rows = []
    for r in data["rows"]:
        row = Row(**{k: v for k, v in r.items() if k != "results"})
        row.results = [Result(**x) for x in r["results"]]
        rows.append(row)
    return rows, data["meta"]


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # not installed
        return None


class Progress:
    """A one-line progress bar on stderr (a line per step when stderr is not a terminal)."""

    def __init__(self, enabled: bool = True, width: int = 24) -> None:
        self.enabled, self.width, self.total, self.i = enabled, width, 0, 0
        self.tty = sys.stderr.isatty()
        self.label = ""

    def _draw(self, text: str) -> None:
        if not self.enabled:
            return
        filled = int(self.width * self.i / self.total) if self.total else 0
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.i}/{self.total} {text}"
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line[:120])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def step(self, label: str) -> None:
        self.i += 1
        self.label = label
        self._draw(label)

    def note(self, text: str) -> None:
        self._draw(text if not self.label else f"{self.label}: {text.split(': ', 1)[-1]}")

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
