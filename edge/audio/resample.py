"""Sample-rate conversion to 16 kHz in plain numpy (no scipy on the device).

Owns :func:`resample`, a polyphase FIR resampler equivalent to ``scipy.signal.resample_poly`` with
its default Kaiser window (beta 5, half-length 10 taps per phase of the larger factor), which is the
preprocessing YAMNet's reference scores were measured with. It works on a whole signal: file sources
resample once at load, and a microphone is asked for 16 kHz directly (ALSA's plug layer converts).
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

TARGET_RATE = 16000


@lru_cache(maxsize=8)
def _polyphase_filter(up: int, down: int) -> np.ndarray:
    """Low-pass FIR at the narrower Nyquist, scaled by ``up``, as ``(up, taps_per_phase)`` (phase-major)."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    n = 2 * half_len + 1
    cutoff = 1.0 / max_rate  # relative to Nyquist of the upsampled signal
    t = np.arange(n) - half_len
    h = cutoff * np.sinc(cutoff * t) * np.kaiser(n, 5.0)
    h = h / h.sum() * up
    taps = -(-n // up)
    padded = np.zeros(taps * up)
    padded[:n] = h
    return padded.reshape(taps, up).T.copy()  # row p holds h[p], h[p+up], h[p+2up] …


def resample(x: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Resample a 1-D float signal from ``rate`` to ``target`` Hz; output length ceil(len*up/down)."""
    x = np.asarray(x, dtype=np.float64)
    if rate == target:
        return x.astype(np.float32)
    g = gcd(rate, target)
    up, down = target // g, rate // g
    poly = _polyphase_filter(up, down)
    taps = poly.shape[1]
    half_len = 10 * max(up, down)
    n_out = -(-len(x) * up // down)
    # Output sample m sits at upsampled index m*down + half_len (the filter's delay is removed).
    pos = np.arange(n_out, dtype=np.int64) * down + half_len
    phase = pos % up
    base = pos // up
    padded = np.concatenate([np.zeros(taps), x, np.zeros(taps)])
    # y[m] = sum_k poly[phase, k] * x[base - k]; gather in blocks to bound memory.
    out = np.empty(n_out, dtype=np.float64)
    offsets = np.arange(taps)
    block = 16384
    for start in range(0, n_out, block):
        stop = min(start + block, n_out)
        idx = base[start:stop, None] - offsets[None, :] + taps
        valid = (idx >= 0) & (idx < len(padded))
        samples = np.where(valid, padded[np.clip(idx, 0, len(padded) - 1)], 0.0)
        out[start:stop] = np.einsum("ij,ij->i", samples, poly[phase[start:stop]])
    return out.astype(np.float32)
