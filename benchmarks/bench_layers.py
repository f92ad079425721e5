"""pytest-benchmark microbenchmarks of mlx_impl.layers ops against native MLX and torch.

Not part of `pytest` (testpaths = tests/) and not gating; run explicitly:

    .venv/bin/pytest benchmarks/bench_layers.py --benchmark-group-by=group --benchmark-columns=min,median

Sizes follow Whisper: GELU on 3M floats (base encoder MLP: 1500 x 2048), softmax over
(8, 1500, 1500) (base encoder attention scores), layer norm on (1500, 512), log-mel of 30 s.
The BLAS in use (see `mlx_impl.blas_info()`) is recorded in each benchmark's extra_info.
"""

from __future__ import annotations

import mlx_impl  # first: the fast-BLAS preload works only if nothing imported mlx before

import mlx.core as mx
import numpy as np
import pytest
import torch
from mlx import nn

from mlx_impl.layers.activations import gelu, softmax
from mlx_impl.layers.audio import log_mel_spectrogram
from mlx_impl.layers.norm import layer_norm

RNG = np.random.default_rng(0)
X3M = (RNG.standard_normal(3_000_000) * 3).astype(np.float32)
SCORES = (RNG.standard_normal((8, 1500, 1500)) * 3).astype(np.float32)
LN_X = (RNG.standard_normal((1500, 512)) * 3 + 5).astype(np.float32)
LN_W = RNG.standard_normal(512).astype(np.float32)
LN_B = RNG.standard_normal(512).astype(np.float32)
AUDIO = (0.1 * RNG.standard_normal(480_000)).astype(np.float32)


def _mlx(benchmark, fn, *args):
    mx.eval(fn(*args))  # compile / warm up outside the timing
    benchmark.extra_info["blas"] = mlx_impl.blas_info()["library"]
    benchmark.pedantic(lambda: mx.eval(fn(*args)), rounds=5, iterations=1, warmup_rounds=1)


def _torch(benchmark, fn, *args):
    benchmark.pedantic(lambda: fn(*args), rounds=5, iterations=1, warmup_rounds=1)


GELU_CASES = {
    "ours": lambda b: _mlx(b, gelu, mx.array(X3M)),
    "mlx_native": lambda b: _mlx(b, nn.gelu, mx.array(X3M)),
    "torch": lambda b: _torch(b, torch.nn.functional.gelu, torch.from_numpy(X3M)),
}
SOFTMAX_CASES = {
    "ours": lambda b: _mlx(b, softmax, mx.array(SCORES)),
    "mlx_native": lambda b: _mlx(b, lambda x: mx.softmax(x, axis=-1), mx.array(SCORES)),
    "torch": lambda b: _torch(b, lambda x: torch.softmax(x, -1), torch.from_numpy(SCORES)),
}
LN_CASES = {
    "ours": lambda b: _mlx(b, layer_norm, mx.array(LN_X), mx.array(LN_W), mx.array(LN_B)),
    "mlx_fast": lambda b: _mlx(
        b,
        lambda x, w, c: mx.fast.layer_norm(x, w, c, 1e-5),
        mx.array(LN_X),
        mx.array(LN_W),
        mx.array(LN_B),
    ),
    "torch": lambda b: _torch(
        b,
        lambda x, w, c: torch.nn.functional.layer_norm(x, (512,), w, c),
        torch.from_numpy(LN_X),
        torch.from_numpy(LN_W),
        torch.from_numpy(LN_B),
    ),
}


@pytest.mark.benchmark(group="gelu 3M fp32")
@pytest.mark.parametrize("impl", list(GELU_CASES))
def test_gelu(benchmark, impl):
    GELU_CASES[impl](benchmark)


@pytest.mark.benchmark(group="softmax (8,1500,1500) fp32")
@pytest.mark.parametrize("impl", list(SOFTMAX_CASES))
def test_softmax(benchmark, impl):
    SOFTMAX_CASES[impl](benchmark)


@pytest.mark.benchmark(group="layer_norm (1500,512) fp32")
@pytest.mark.parametrize("impl", list(LN_CASES))
def test_layer_norm(benchmark, impl):
    LN_CASES[impl](benchmark)


@pytest.mark.benchmark(group="log-mel 30 s, 80 bins")
@pytest.mark.parametrize("impl", ["ours", "whisper_torch"])
def test_log_mel(benchmark, impl):
    if impl == "ours":
        _mlx(benchmark, lambda a: log_mel_spectrogram(a, 80), mx.array(AUDIO))
    else:
        import whisper.audio as wa

        _torch(benchmark, lambda a: wa.log_mel_spectrogram(a, 80), torch.from_numpy(AUDIO))
