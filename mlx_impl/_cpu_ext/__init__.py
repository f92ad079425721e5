"""Optional C++ CPU kernels for MLX: softmax, GELU, sin, Snake, logsumexp, two attentions,
matvec, layer norm.

MLX 0.32.4's CPU backend evaluates exp/erf with scalar libm calls, which made softmax and GELU
most of Whisper's encoder time on the CPU. This extension adds MLX primitives for them
(`softmax_lastaxis`, `gelu_erf`) whose `eval_cpu` runs vectorised row kernels (kernels.h: exp by
range reduction and a minimax polynomial, erfc tail by erfcx polynomial; fp32 math, fp16/bf16
rounded once) over rows split across threads (one per CPU this process may use: OpenMP's pool
where the compiler has OpenMP, the pool MKL's GNU threading layer uses too; else std::thread). Their
`eval_gpu` throws: on Metal/CUDA, mlx_impl.layers.activations uses MLX's native ops.

GELU results below the smallest normal float are flushed to signed zero (changes < 1.2e-38): a
subnormal activation made the next matmul take x86 microcode assists (whisper-base encoder fc2
279 ms vs 22 ms). Softmax probabilities below it are flushed to zero likewise: peaked rows made
the attention's second product ~10x slower ((8, 1500, 1500) scores, 18% subnormal: 774 vs 145 ms).
`multihead_attention(q, k, v, n_head, scale)` computes softmax(scale q_h k_h^T) v_h per head on
the projections' (B, T, H*D) layout, and `attention(q, kt, v)` the same on per-head (…, T, D)
arrays. Both work in tiles of one head x 256 query rows (up to two rows: sgemv), shared out to
our own threads with single-threaded cblas_sgemm, so the (B, H, T, S) scores never exist in memory
(whisper-base encoder layer 33 ms vs 88 ms through MLX ops); mlx_impl.layers.attention uses the
first for unmasked float32 attention on the CPU, the s3 tokenizer the second. Inputs are read in
place; only strided views are copied, inside the op.
`snake(x, alpha, inv_beta)` is x + inv_beta * sin(alpha x)**2 on channels-last (..., C), one op
with kernels.h's vectorised float32 sin (reduction by pi/2 in double, minimax polynomials; <= 1.5
ulp from float64 measured, |x| > 1e6 and inf/nan through double std::sin); `sin(x)` exposes that
sin alone. mlx_impl.layers.snake uses it on the CPU ((1, 441000, 64): 0.10-0.13 s vs 0.66-0.73 s
composed, MLX's CPU sin being scalar libm; dac-44khz 10 s clip: encode 1.9x, decode 2.5x faster).
`logsumexp_lastaxis(x)` is max + log(sum exp(x - max)) per row, the sum in double (decoding's
log-softmax over 51865 logits: 0.06 ms vs 0.28 ms composed).
`matvec(x, w, bias)` is x @ w.T (+ bias) as one cblas_sgemv per row, for the one-row products of
token-by-token decoding (mlx_impl.layers.linear; whisper-base vocabulary head 4.4 ms vs 10.6 ms
through MLX's matmul, which calls sgemm and packs the whole weight first). `layer_norm(x, w, b,
eps)` is torch's F.layer_norm over the last axis with its statistics summed in double, one op
(mlx_impl.layers.norm; one 512-row 0.17 -> ~0.02 ms, (1500, 512) 3.7 -> 0.6 ms).

Build: `.venv/bin/python mlx_impl/_cpu_ext/build.py` (CMake + nanobind 3; `scripts/setup.sh`
runs it). Not built, or failing to load, the compiled-MLX fallback in activations.py runs;
`cpu_kernels_info()` says which path each op took and why. On macOS the build is expected to
work (no x86 flags, NEON is baseline) but is not tested; the Metal path never needs it.

Measured in one process on a loaded 2-core AVX-512 x86 (build x86-64-v4, MLX 0.32.4 with
OpenBLAS, torch 2.13.0 with 2 threads; medians of 5): softmax over (8, 1500, 1500) fp32 69 ms
(MLX native 418, compiled fallback 397, torch 53); GELU over (1500, 2048) 19 ms (MLX native
erf form 141, compiled fallback 154, torch 8); whisper-base encoder on 30 s 2.46 s (fallback
4.22 s). One thread's share of that softmax: 19 ms with 512-bit vectors, 24 ms with GCC's default
256-bit preference on AVX-512, 25 ms AVX2 (x86-64-v3), 30 ms SSE4.2 (x86-64-v2). Accuracy: see
tests/test_cpu_ext.py (softmax <= 7.2e-8 abs from float64; gelu <= 0.8 ulp, tail 2.8e-7 rel.;
the compiled fallback: softmax 4.3e-7, gelu tail 1.5e-5 rel.; layer norm 1.0e-6 vs composed
1.6e-6 on outputs up to ~11; attention within 3.4e-6 of float64, as accurate as MLX's unfused
ops on average).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
_state: dict = {"loaded": False, "module": None, "error": None, "used": {}}


def _load() -> ModuleType | None:
    if _state["loaded"]:
        return _state["module"]
    _state["loaded"] = True
    if not any(_HERE.glob("_kernels*.so")) and not any(_HERE.glob("_kernels*.pyd")):
        _state["error"] = (
            "not built; run `.venv/bin/python mlx_impl/_cpu_ext/build.py` "
            "(needs cmake, a C++20 compiler and nanobind>=3)"
        )
        return None
    try:
        import mlx.core as mx

        from mlx_impl._cpu_ext import _kernels

        # nanobind only passes mx.array across modules built with the same nanobind ABI as
        # mlx.core: probe that here (builds a graph node, evaluates nothing).
        _kernels.gelu_erf(mx.zeros((1,), dtype=mx.float32))
    except (ImportError, TypeError) as e:
        _state["error"] = (
            f"built module failed to load ({type(e).__name__}: {e}); rebuild with "
            "`.venv/bin/python mlx_impl/_cpu_ext/build.py` against the installed mlx"
        )
        return None
    _state["module"] = _kernels
    return _kernels


def kernels() -> ModuleType | None:
    """The compiled module, or None when it is not built or cannot be used."""
    return _load()


def record(op: str, path: str) -> None:
    """Note which implementation `op` last ran (read back by `cpu_kernels_info`)."""
    _state["used"][op] = path


def cpu_kernels_info() -> dict:
    """Which CPU kernels mlx_impl uses: {'extension': path or None, 'arch', 'threads',
    'threading' ('openmp' or 'std::thread'), 'error', 'used': {op: path last run}} where path is
    'extension', 'compiled fallback' or 'native'."""
    mod = _load()
    return {
        "extension": None if mod is None else str(Path(mod.__file__).name),
        "arch": None if mod is None else mod.arch,
        "threads": None if mod is None else mod.num_threads(),
        "threading": None if mod is None else getattr(mod, "threading", "unknown"),
        "error": _state["error"],
        "used": dict(_state["used"]),
    }
