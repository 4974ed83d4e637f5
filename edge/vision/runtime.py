"""onnxruntime sessions built one way for every model (detector, pose, audio).

Owns the choice of execution providers (TensorRT/CUDA on a Jetson when onnxruntime-gpu offers them,
else CPU), the session options that come from configuration, and the process's other native thread
pool (OpenCV's), which is sized where the inference threads are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
from pathlib import Path

import cv2
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


def limit_opencv_threads() -> None:
    """Run OpenCV's functions (resize, colour conversion, blur) on the calling thread, with no pool.

    Each thread that calls OpenCV here (capture and motion, inference's letterbox, media JPEGs) has
    work of its own; splitting a 512×512 resize over a pool bought the inference thread nothing
    (measured: the same CPU per frame with or without the pool) and cost 0.8 ms of CPU per frame in
    the pool's worker, on the core that capture and media need.
    """
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)


def release_freed_memory() -> None:
    """Hand the heap pages a model load freed back to the system (glibc keeps them otherwise).

    Parsing and optimising a model leaves megabytes of freed heap that glibc does not return by
    itself (measured: 8-9 MiB of RSS after the detector's session). Not glibc: nothing to do.
    """
    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(name).malloc_trim(0)


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
    limit_opencv_threads()  # here, so a benchmark's bare loop and the device run OpenCV alike
    session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
    release_freed_memory()
    log.info("model %s on %s (threads=%s, optimisation=%s)", path.name, session.get_providers(), threads,
             optimization)
    return session
