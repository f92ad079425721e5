"""Wav2Vec2 input normalisation (numpy).

Upstream: transformers 5.24.0 `Wav2Vec2FeatureExtractor(do_normalize=True)`
(`zero_mean_unit_var_norm`), for one unpadded utterance: (x - mean) / sqrt(var + 1e-7), the
population variance. Deviation: the statistics are accumulated in float64 (upstream: numpy
float32 mean/var), then the result is rounded to float32 once; the two agree to fp32 rounding.
"""

from __future__ import annotations

import numpy as np

VAR_EPS = 1e-7  # upstream's epsilon: all-zero (silent) input normalises to zeros, not NaN


def normalize(audio: np.ndarray) -> np.ndarray:
    """(N,) or (B, N) waveform -> zero-mean unit-variance float32, per row."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected audio (samples,) or (batch, samples), got shape {x.shape}")
    if x.shape[-1] == 0:
        raise ValueError("audio has no samples; pass a non-empty waveform")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"audio has {int((~np.isfinite(x)).sum())} NaN/inf samples; clean or "
                         "re-export it")
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + VAR_EPS)).astype(np.float32)
