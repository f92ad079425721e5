"""GELU, softmax, exp and erf, exact to fp32 rounding, with a CPU path that avoids MLX's scalar
libm transcendentals.

Why a CPU path: MLX 0.32.4's CPU `exp`/`erf` call scalar libm (3M floats: exp ~60 ms, erf
~117 ms, `nn.gelu` ~120 ms; torch 2.x: 0.5-1.5 ms on the same 2 cores), and `mx.compile` cannot
vectorise them. On the CPU, exp and erf are therefore built from multiply/add, fused by
`mx.compile(shapeless=True)` (one trace for every shape, so decoding steps do not retrace):

- exp(x) = 2**k * p(r): k = round(x / ln 2) (adding and subtracting 1.5 * 2**23 rounds to an
  integer: MLX compiles with g++ -O3 without -ffast-math, which keeps that order),
  r = x - k ln 2 in two parts (Cody-Waite; ln2_hi has 17 significant bits so k * ln2_hi is
  exact), p a degree-6 minimax polynomial on |r| <= ln2/2 (relative error 7.4e-9), 2**k built by
  shifting k + 127 into the exponent field and applied as 2**(k//2) * 2**(k - k//2) so results in
  the subnormal range (x down to -103.3) and up to 2**128 * p are right. x is clipped to
  [-104, 89] first: -inf -> 0, +inf -> inf, nan stays nan. Inside softmax and GELU (arguments
  <= 0) one factor is used and results below 8e-39 are flushed to 0 (absolute error < 1e-38).
- erf(z) = z + z * (P(z**2) - 1) for |z| < 1 (P degree 6, relative error 3.0e-9; the final add
  carries the rounding), and erf(z) = sign(z) * (1 - exp(-z**2) * R(z)) for |z| >= 1 with
  R ~ erfcx(z) = exp(z**2) erfc(z), a degree-10 polynomial in s = (z - 3) / (z + 3) fitted on
  [1, 10.5] (relative error 3.1e-10); z is clipped to [1, 10.5] (exp(-10.5**2) is 0 in fp32).
- Coefficients: weighted minimax fits (linear programming on a 20-40k point grid against
  scipy.special in float64), made for this module; tests/test_layers_ops.py checks the results.

Measured accuracy on fp32 inputs (tests/test_layers_ops.py): exp <= 0.97 ulp (torch 0.56); erf
<= 7.5e-8 abs from float64 (torch 6.0e-8); gelu <= 3.8e-7 abs on |x| <= 12, i.e. <= 0.8 ulp of
the result (torch 1.1e-6); softmax 2.1e-7 abs on probabilities (torch 1.1e-7).

GELU is x * Phi(x) with Phi(x) = 0.5 erfc(-x / sqrt 2) for x <= -sqrt 2, which avoids the
cancellation in torch's `0.5 * (1 + erf(x / sqrt 2))`: on x < 0 ours is 4.8e-8 from float64,
torch's fp32 result 1.06e-6. Special values: gelu(-inf) = nan (as torch), gelu(+inf) = +inf and
gelu(3e38) = 3e38 (as torch's fp64 kernel; its fp32 CPU kernel gives nan and inf), nan -> nan.

Speed, honestly: the fused kernels are only as fast as MLX's code generator lets them be. Pure
arithmetic fuses into vectorised loops (the exp polynomial stage: 12 ms per 3M floats), but a
fused loop that also holds selects, min/max or integer ops is not vectorised, and the eager
passes between stages add up. Measured on an idle 16-core x86 host pinned to 2 cores (MLX 0.32.4,
OpenBLAS), 3M floats: exp 52 ms (native 58), erf 118 (116), gelu 135 (120); softmax over
(8, 1500, 1500) 351 ms (native 428; torch 29). So on the CPU the gain is mainly softmax; gelu
costs ~12% more than `nn.gelu` for its accuracy on x < 0 (the fix belongs in a custom kernel).

softmax sums its row in two levels (`sum_last`) because MLX's CPU sum is sequential in fp32.

fp16/bf16 inputs are computed in fp32 and rounded back once, as torch's CPU kernels do.

On a GPU (Metal/CUDA) the native ops are used (`mx.erf` form of GELU, `mx.softmax(precise=True)`),
chosen per call from `mx.default_device()`, the device MLX runs the ops on: no flags.

Where the C++ extension `mlx_impl._cpu_ext` is built, `gelu` and `softmax` on the CPU run its
vectorised multithreaded kernels instead (same polynomials, fp32 math; ~10-40x faster than the
compiled forms above, see tests/test_cpu_ext.py); `exp`/`erf` always use the compiled forms.
`mlx_impl._cpu_ext.cpu_kernels_info()` reports which path each op took.
"""

from __future__ import annotations

import math

import mlx.core as mx

from mlx_impl import _cpu_ext

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # 0x3f317200: k * _LN2_HI is exact for |k| < 2**15
_LN2_LO = 1.4286067653301870e-06
_SHIFTER = 12582912.0  # 1.5 * 2**23: adding it rounds to an integer kept in the low mantissa bits
_EXP_LO, _EXP_HI = -104.0, 89.0

# p(r) = 1 + r + sum c_k r**k, k = 2..6, on |r| <= ln2/2
_EXP_C = (
    0.4999999332254688,
    0.1666646084839465,
    0.041668616707262345,
    0.008374340479645753,
    0.0013802652313735422,
)
# erf(z) / z = P(z**2) on 0 <= z <= 1
_ERF_SMALL = (
    1.1283791670955126,
    -0.37612638379589214,
    0.11283703258177617,
    -0.026858149771889956,
    0.005195854714071426,
    -0.0008072007206053892,
    8.047284867435181e-05,
)
# erfcx(z) = R(s), s = (z - 3) / (z + 3), on 1 <= z <= 10.5
_ERFCX = (
    0.1790011511887414,
    -0.32623356022579947,
    0.24560379830406154,
    -0.15011592298903584,
    0.07166594818433422,
    -0.0243927565027159,
    0.004267885273758694,
    0.0007099012490677538,
    -0.0005909692727861288,
    3.685041249727698e-05,
    5.153584397817159e-05,
)
_ERFCX_C = 3.0
_ERF_SPLIT = 1.0
_ERF_CLAMP = 10.5
_SQRT1_2 = 1.0 / math.sqrt(2.0)


def _horner(x: mx.array, coeffs: tuple[float, ...]) -> mx.array:
    """sum coeffs[i] * x**i (at least two coefficients)."""
    acc = x * coeffs[-1] + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        acc = acc * x + c
    return acc


# In MLX's compiled CPU kernels, `maximum`/`minimum`/`clip` and `where` with two array operands
# run ~20x slower than arithmetic (3M floats: ~40 ms vs ~2 ms), while `where` with one scalar
# operand is as fast as a multiply: selects inside compiled functions use this form, and clips
# run eagerly (outside mx.compile), where `mx.clip` is fast.


def _select(c: mx.array, a: mx.array, b: mx.array) -> mx.array:
    """where(c, a, b), exactly: -0.0 is the additive identity for every float, signed zeros,
    infinities and nan included, and the branch not taken never enters the sum."""
    return mx.where(c, a, -0.0) + mx.where(c, -0.0, b)


def _exp_parts(x: mx.array) -> tuple[mx.array, mx.array]:
    """(p, k): e**x = p * 2**k, p in [sqrt(1/2), sqrt(2)], k int32 (x already clamped)."""
    k = (x * _LOG2E + _SHIFTER) - _SHIFTER  # round(x * log2 e), exact: |x log2 e| < 2**22
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _horner(r, _EXP_C) * r * r + r + 1.0
    return p, k.astype(mx.int32)


def _pow2(k: mx.array) -> mx.array:
    """2**k for int32 k in [-127, 128] via the exponent field (k = -127 gives +0.0)."""
    return mx.left_shift(k + 127, 23).view(mx.float32)


# shapeless: one trace serves every shape (the decoder's key length grows by one each step)
_exp_parts_c = mx.compile(_exp_parts, shapeless=True)


def _exp_f32(x: mx.array) -> mx.array:
    p, k = _exp_parts_c(mx.clip(x, _EXP_LO, _EXP_HI))
    # 2**k as two normal factors: right down to the subnormal range and up to p * 2**128
    k1 = mx.right_shift(k, 1)
    return p * _pow2(k1) * _pow2(k - k1)


def _exp_nonpos_f32(x: mx.array) -> mx.array:
    """e**x for x <= 0 with one scale factor; results below e**-87.68 = 8e-39 are flushed to 0
    (x is clamped to -88, where k = -127 gives 2**k = 0)."""
    p, k = _exp_parts_c(mx.clip(x, -88.0, 0.0))
    return p * _pow2(k)


def _erfc_tail(z: mx.array, e: mx.array) -> mx.array:
    """erfc(z) = e * erfcx(z) for z in [1, 10.5], given e = exp(-z**2)."""
    s = (z - _ERFCX_C) / (z + _ERFCX_C)
    return e * _horner(s, _ERFCX)


def _erf_small(z: mx.array) -> mx.array:
    """erf(z) for |z| <= 1, as z + z * (P(z**2) - 1): the final add carries the rounding."""
    return z + z * _horner(z * z, (_ERF_SMALL[0] - 1.0,) + _ERF_SMALL[1:])


def _erf_combine(x: mx.array, z: mx.array, e: mx.array) -> mx.array:
    big = mx.where(x < 0, -1.0, 1.0) * (1.0 - _erfc_tail(z, e))
    return _select(mx.abs(x) < _ERF_SPLIT, _erf_small(x), big)


def _gelu_combine(x: mx.array, z: mx.array, e: mx.array) -> mx.array:
    xs = x * _SQRT1_2
    tail = 0.5 * _erfc_tail(z, e)  # Phi(-|x|)
    phi_big = _select(x < 0, tail, 1.0 - tail)
    phi_small = 0.5 + 0.5 * _erf_small(xs)
    phi = _select(mx.abs(xs) < _ERF_SPLIT, phi_small, phi_big)
    return x * phi


_erf_combine_c = mx.compile(_erf_combine, shapeless=True)
_gelu_combine_c = mx.compile(_gelu_combine, shapeless=True)


def _erf_f32(x: mx.array) -> mx.array:
    z = mx.clip(mx.abs(x), _ERF_SPLIT, _ERF_CLAMP)
    return _erf_combine_c(x, z, _exp_nonpos_f32(-(z * z)))


def _gelu_f32(x: mx.array) -> mx.array:
    z = mx.clip(mx.abs(x * _SQRT1_2), _ERF_SPLIT, _ERF_CLAMP)
    return _gelu_combine_c(x, z, _exp_nonpos_f32(-(z * z)))


def _block_size(n: int) -> int | None:
    """Largest divisor of n in [8, 64] leaving at least 2 blocks, or None."""
    for b in range(64, 7, -1):
        if n % b == 0 and n // b >= 2:
            return b
    return None


def sum_last(x: mx.array) -> mx.array:
    """Sum over the last axis (keepdims) in two levels where a block size divides its length.

    MLX's CPU backend sums a row sequentially in fp32, which for 129 softmax terms already costs
    ~3 ulp (torch accumulates in vector lanes: ~1 ulp); summing blocks of <= 64 and then the
    block sums brings ours to torch's level. Used by softmax and layer_norm on the CPU.
    """
    n = x.shape[-1]
    b = _block_size(n)
    if b is None:
        return x.sum(-1, keepdims=True)
    return x.reshape(*x.shape[:-1], n // b, b).sum(-1).sum(-1, keepdims=True)


def _on_cpu() -> bool:
    return mx.default_device() == mx.cpu


def _float32_apply(fn, x: mx.array) -> mx.array:
    if not mx.issubdtype(x.dtype, mx.floating):
        raise TypeError(
            f"expected a floating-point array, got {x.dtype}; cast with .astype(mx.float32)"
        )
    if x.dtype == mx.float32:
        return fn(x)
    return fn(x.astype(mx.float32)).astype(x.dtype)


def exp(x: mx.array) -> mx.array:
    """e**x; on the CPU the fused polynomial above (1 ulp), elsewhere `mx.exp`."""
    if not _on_cpu():
        return mx.exp(x)
    return _float32_apply(_exp_f32, x)


def erf(x: mx.array) -> mx.array:
    """Error function; on the CPU the fused approximation above (<= 1 ulp abs), else `mx.erf`."""
    if not _on_cpu():
        return mx.erf(x)
    return _float32_apply(_erf_f32, x)


_EXT_DTYPES = (mx.float32, mx.float16, mx.bfloat16)


def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU, x * Phi(x), as torch's `F.gelu` default (approximate='none').

    On the CPU the C++ kernel of mlx_impl._cpu_ext when built, else the compiled fallback;
    `mlx_impl._cpu_ext.cpu_kernels_info()` says which ran.
    """
    if not _on_cpu():
        _cpu_ext.record("gelu", "native")
        return x * (1 + mx.erf(x * _SQRT1_2)) / 2
    ext = _cpu_ext.kernels()
    if ext is not None and x.dtype in _EXT_DTYPES:
        _cpu_ext.record("gelu", "extension")
        return ext.gelu_erf(x)
    _cpu_ext.record("gelu", "compiled fallback")
    return _float32_apply(_gelu_f32, x)


def softmax(x: mx.array, axis: int = -1) -> mx.array:
    """Softmax along `axis`, computed in fp32 and returned in x's dtype (as torch on CPU).

    Rows that are all -inf give nan, as torch does.
    """
    if not _on_cpu():
        _cpu_ext.record("softmax", "native")
        return mx.softmax(x, axis=axis, precise=True)
    if not mx.issubdtype(x.dtype, mx.floating):
        raise TypeError(
            f"expected a floating-point array, got {x.dtype}; cast with .astype(mx.float32)"
        )
    last = axis in (-1, x.ndim - 1)
    ext = _cpu_ext.kernels()
    if ext is not None and x.dtype in _EXT_DTYPES:
        _cpu_ext.record("softmax", "extension")
        if last:
            return ext.softmax_lastaxis(x)
        return mx.moveaxis(ext.softmax_lastaxis(mx.moveaxis(x, axis, -1)), -1, axis)
    _cpu_ext.record("softmax", "compiled fallback")
    xf = x.astype(mx.float32)
    if not last:
        xf = mx.moveaxis(xf, axis, -1)
    m = mx.max(xf, axis=-1, keepdims=True)
    e = _exp_nonpos_f32(xf - m)
    out = e / sum_last(e)
    if not last:
        out = mx.moveaxis(out, -1, axis)
    return out.astype(x.dtype)


def logsumexp(x: mx.array, axis: int = -1, keepdims: bool = False) -> mx.array:
    """log(sum(exp(x))) along `axis`, in fp32. Rows that are all -inf give -inf, as `mx.logsumexp`.

    On the CPU it never calls MLX's scalar CPU `exp`:
    - with the extension, its `logsumexp_lastaxis`: max m, then m + log(sum exp(x - m)) with the
      sum in float64, one op (whisper's (1, 51865) logits: 0.06 ms, against 0.28 ms for the form
      below and 1.28 ms for `mx.logsumexp`, which is also further from float64: 4.7e-6 abs at
      values ~30);
    - without it, max(x) - log(max(softmax(x))): the largest softmax value is exp(0) / sum(exp(x
      - max)), one fp32 division from 1 / sum, so `softmax` supplies the sum.
    """
    if not _on_cpu():
        return mx.logsumexp(x.astype(mx.float32), axis=axis, keepdims=keepdims)
    ext = _cpu_ext.kernels()
    if ext is not None and x.dtype in _EXT_DTYPES and x.ndim > 0 and x.shape[axis] > 0:
        _cpu_ext.record("logsumexp", "extension")
        out = ext.logsumexp_lastaxis(x if axis in (-1, x.ndim - 1) else mx.moveaxis(x, axis, -1))
        return mx.expand_dims(out, axis) if keepdims else out
    _cpu_ext.record("logsumexp", "softmax")
    xf = x.astype(mx.float32)
    m = mx.max(xf, axis=axis, keepdims=True)
    out = m - mx.log(mx.max(softmax(xf, axis=axis), axis=axis, keepdims=True))
    out = mx.where(m == -mx.inf, m, out)  # softmax of an all -inf row is nan
    return out if keepdims else mx.squeeze(out, axis=axis)
