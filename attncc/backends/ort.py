"""onnxruntime sessions: provider choice and graph-optimisation level."""

from __future__ import annotations

from typing import Any


def session(model_or_path: Any, device: str = "cpu", optimize: bool = True,
            threads: int | None = None) -> Any:
    """An InferenceSession on the CPU, or on CUDA when asked and available; `threads` caps
    onnxruntime's intra-op threads (default: its own choice, every core)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            from attncc.diagnostics import ExportError

            raise ExportError("onnxruntime has no CUDA provider here",
                              hints=("install onnxruntime-gpu, or use device='cpu'",))
        providers.insert(0, "CUDAExecutionProvider")
    data = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") \
        else str(model_or_path)
    return ort.InferenceSession(data, opts, providers=providers)
