"""Linear layers whose one-row products run as a matrix-vector product on the CPU.

Token-by-token decoding multiplies one row (B = T = 1) by every weight matrix. MLX's CPU matmul
hands that to cblas_sgemm, which first packs the whole weight into panels: for whisper-base's
vocabulary head (51865 x 512, fp32, 2 threads) 10.6 ms per token, against 4.4 ms for
cblas_sgemv on the same OpenBLAS, which streams the row-major weight once. So on the CPU, with
the C++ extension built, float32 products of at most `MATVEC_MAX_ROWS` rows run one sgemv per
row (`mlx_impl._cpu_ext`'s `matvec`); everything else, and every GPU, is MLX's matmul.

With Debian's OpenBLAS 0.3.21 (SkylakeX kernels) the sgemv results are bit-identical to MLX's
matmul for whisper-base's shapes (tests/test_layers_linear.py measures it); another BLAS may
sum in another order, i.e. differ by float32 rounding. Parity taps compare whole sequences (many
rows), which never take the sgemv path.

`Linear` is `mlx.nn.Linear` (same parameters `weight` (N, K) and `bias`, same checkpoint keys)
with that dispatch; `linear(x, weight, bias)` is the function form (e.g. a tied embedding used as
the vocabulary head).

`QuantizedLinear` is what `nn.quantize` makes of our `Linear`: MLX's `nn.QuantizedLinear` (same
parameters `weight` (packed uint32), `scales`, `biases`, `bias`; same checkpoint keys) whose
products of more than `DEQUANTIZE_MIN_ROWS` rows run, on the CPU, as MLX's `mx.dequantize` of the
weight followed by the float matmul. MLX 0.32's CPU `quantized_matmul` has no BLAS path: measured
on 2 cores (AMD EPYC, OpenBLAS), x (1500, 512) by a (2048, 512) weight: fp32 matmul 52 ms,
quantized_matmul 3078 ms (q8) / 4383 ms (q4), dequantize + matmul 145 / 134 ms; one row: fp32
11.7 ms (sgemm packing), quantized_matmul 1.9 / 1.8 ms, dequantize + matmul 15.2 ms. Both paths
compute x @ (scales * q + biases).T in float32; they differ by float32 summation order only.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_impl import _cpu_ext

# Quantized products with more rows than this dequantize the weight on the CPU (module doc):
# quantized_matmul costs ~2 ms per row of the measured (2048, 512) weight, the dequantize ~14 ms.
DEQUANTIZE_MIN_ROWS = 8

# 2 rows: 2 x 4.4 ms by sgemv vs ~12 ms by sgemm for the whisper-base head; 4 rows (beam search):
# 17.6 vs 15.4 ms, so sgemm from there on.
MATVEC_MAX_ROWS = 2


def _matvec_kernels(x: mx.array, weight: mx.array):
    if (x.dtype != mx.float32 or weight.dtype != mx.float32 or x.ndim == 0
            or x.size // max(x.shape[-1], 1) > MATVEC_MAX_ROWS or mx.default_device() != mx.cpu):
        return None
    return _cpu_ext.kernels()


def linear(x: mx.array, weight: mx.array, bias: mx.array | None = None) -> mx.array:
    """x @ weight.T (+ bias) for weight (N, K), as `nn.Linear` computes it."""
    ext = _matvec_kernels(x, weight)
    if ext is not None and (bias is None or bias.dtype == mx.float32):
        _cpu_ext.record("matvec", "extension")
        return ext.matvec(x, weight, bias)
    if bias is not None:
        return mx.addmm(bias, x, weight.T)
    return x @ weight.T


class Linear(nn.Linear):
    """`nn.Linear` whose one-row float32 products use sgemv on the CPU (see the module doc)."""

    def __call__(self, x: mx.array) -> mx.array:
        return linear(x, self["weight"], self["bias"] if "bias" in self else None)

    def to_quantized(self, group_size: int | None = None, bits: int | None = None,
                     mode: str = "affine", quantize_input: bool = False):
        """`nn.Linear.to_quantized`, returning our `QuantizedLinear` (weights only)."""
        if quantize_input:
            return super().to_quantized(group_size, bits, mode, quantize_input)
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class QuantizedLinear(nn.QuantizedLinear):
    """`nn.QuantizedLinear` that dequantizes for many-row products on the CPU (module doc)."""

    def __call__(self, x: mx.array) -> mx.array:
        rows = x.size // max(x.shape[-1], 1)
        if rows <= DEQUANTIZE_MIN_ROWS or mx.default_device() != mx.cpu:
            return super().__call__(x)
        _cpu_ext.record("quantized_linear", "dequantize + matmul")
        weight = mx.dequantize(self["weight"], self["scales"], self.get("biases"),
                               self.group_size, self.bits, mode=self.mode).astype(x.dtype)
        return linear(x, weight, self["bias"] if "bias" in self else None)
