"""onnxruntime sessions built one way for every model (detector, pose, audio).

Owns the choice of execution providers (TensorRT/CUDA on a Jetson when onnxruntime-gpu offers them,
else CPU) and the session options that come from configuration.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort
import psutil

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def choose_providers(requested: str = "auto") -> list[str]:
    available = ort.get_available_providers()
    if requested.strip().lower() == "auto":
        chosen = [p for p in PREFERRED_PROVIDERS if p in available]
    else:
        chosen = [p.strip() for p in requested.split(",") if p.strip() in available]
    return chosen or ["CPUExecutionProvider"]


def default_threads() -> int:
    """All physical cores but one: capture, the event loop and the media thread need a core of their own.
    (Measured on 2 cores: the pipeline delivers the same fps with 1 inference thread as with 2, at lower
    latency, because the second core went to video decoding and the loop anyway.)"""
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 2
    return max(1, cores - 1)


def create_session(path: Path, threads: int = 0, optimization: str = "all",
                   providers: str = "auto") -> ort.InferenceSession:
    """``threads`` 0 means :func:`default_threads`."""
    options = ort.SessionOptions()
    threads = threads or default_threads()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = OPT_LEVELS[optimization]
    # Idle intra-op workers must sleep, not spin: on a 4-core Pi the spinning steals the cores that
    # capture, the event loop and the broker client need between inferences.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = choose_providers(providers)
    session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    log.info("model %s on %s (threads=%s, optimisation=%s)", path.name, session.get_providers(), threads,
             optimization)
    return session
