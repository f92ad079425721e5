"""Kokoro presets (plain data; the CLI and the parity specs build from them).

- `kokoro-82m`: hexgrad/Kokoro-82M's config.json as shipped in the kokoro-onnx 0.6.1 wheel
  (`kokoro_onnx/config.json`, read here from `kokoro-82m.json`): ALBERT 768 x 12 (shared),
  hidden 512, style 2 x 128, 3 layers, max_dur 50, iSTFTNet upsampling 10 x 6, n_fft 20 hop 5.
- `kokoro-test-tiny`: the same vocabulary (178 ids, 114 phonemes) with a tiny ALBERT (64 wide,
  2 heads, 2 layers), 2 text/duration layers, max_dur 8 and a short iSTFTNet (upsampling 4 x 2,
  2 ResBlock kernels, n_fft 8 hop 2). The decoder's 1024/512 widths are fixed by upstream's
  code (see config.py), so ~30 M of its parameters remain.
"""

from __future__ import annotations

import json
from pathlib import Path

KOKORO_82M = json.loads((Path(__file__).with_name("kokoro-82m.json")).read_text(encoding="utf-8"))

TEST_TINY = dict(
    KOKORO_82M,
    plbert=dict(hidden_size=64, num_attention_heads=2, intermediate_size=128,
                max_position_embeddings=512, num_hidden_layers=2, dropout=0.1),
    n_layer=2, max_dur=8,
    istftnet=dict(upsample_kernel_sizes=[8, 4], upsample_rates=[4, 2], gen_istft_hop_size=2,
                  gen_istft_n_fft=8, resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
                  resblock_kernel_sizes=[3, 7], upsample_initial_channel=512))

PRESETS = {"kokoro-82m": KOKORO_82M, "kokoro-test-tiny": TEST_TINY}
