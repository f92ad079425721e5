"""Vocos checkpoint state (weights.vocos layout, numpy) -> MLX parameter tree.

The checkpoint keys are upstream's (`pytorch_model.bin`). Conversion:
- conv kernels to MLX's channels-last (out, k, in): `backbone.embed.weight` and every
  `backbone.convnext.{i}.dwconv.weight` (depthwise: (C, 1, 7) -> (C, 7, 1));
- the buffers are not parameters here: `head.istft.window` must be the periodic Hann window the
  head computes itself, `feature_extractor.mel_spec.spectrogram.window` likewise; the stored mel
  filterbank `feature_extractor.mel_spec.mel_scale.fb` is returned separately (the model uses it,
  `Vocos.set_mel_filterbank`) after checking it is the HTK filterbank of the config;
- everything else unchanged. `Vocos.load_weights(strict=True)` checks the key set.
"""

from __future__ import annotations

import numpy as np

from mlx_impl.layers.conv import torch_to_mlx_kernel
from mlx_impl.layers.spectral import hann_window, mel_filters
from mlx_impl.vocos.config import VocosConfig

WINDOW_KEYS = ("head.istft.window", "feature_extractor.mel_spec.spectrogram.window")
FB_KEY = "feature_extractor.mel_spec.mel_scale.fb"
FB_ATOL = 1e-5  # torchaudio's fp32 filterbank vs ours in float64: measured 7.0e-6


def convert(state: dict[str, np.ndarray], cfg: VocosConfig
            ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """-> (MLX parameters, stored mel filterbank (n_freqs, n_mels) or None)."""
    out: dict[str, np.ndarray] = {}
    fb = None
    for name, value in state.items():
        value = np.asarray(value)
        if name in WINDOW_KEYS:
            want = hann_window(value.shape[0])
            if value.shape[0] not in (cfg.head.n_fft, getattr(cfg.features, "n_fft", -1)) or \
                    np.abs(value - want).max() > 1e-6:
                raise ValueError(f"{name} is not a periodic Hann window of the configured n_fft")
        elif name == FB_KEY:
            f = cfg.features
            want = mel_filters(f.sample_rate, f.n_fft, f.n_mels, mel_scale="htk", norm=None).T
            if value.shape != want.shape or np.abs(value - want).max() > FB_ATOL:
                raise ValueError(f"{FB_KEY} {value.shape} is not the HTK mel filterbank of the "
                                 f"config (sr {f.sample_rate}, n_fft {f.n_fft}, n_mels {f.n_mels})")
            fb = value.astype(np.float32)
        elif name == "backbone.embed.weight" or (name.startswith("backbone.convnext.")
                                                 and name.endswith(".dwconv.weight")):
            out[name] = torch_to_mlx_kernel(value, transposed=False)
        else:
            out[name] = value
    if cfg.is_mel and fb is None:
        raise ValueError(f"mel Vocos checkpoint has no {FB_KEY}")
    return out, fb
