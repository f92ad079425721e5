#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include "ops.h"

namespace nb = nanobind;
using namespace nb::literals;

NB_MODULE(_kernels, m) {
  m.doc() =
      "CPU kernels for mlx_impl, MLX ops on the CPU stream: softmax_lastaxis, gelu_erf, sin, "
      "snake, logsumexp_lastaxis, attention, multihead_attention, matvec, layer_norm (fp32 math).";
  m.def("softmax_lastaxis", &mlx_impl_ext::softmax_lastaxis, "x"_a,
        "Softmax over the last axis of a float32/float16/bfloat16 array, on the CPU stream.");
  m.def("gelu_erf", &mlx_impl_ext::gelu_erf, "x"_a,
        "Exact (erf) GELU of a float32/float16/bfloat16 array, on the CPU stream.");
  m.def("sin", &mlx_impl_ext::sin, "x"_a,
        "sin of a float32/float16/bfloat16 array (vectorised fp32 kernel), on the CPU stream.");
  m.def("snake", &mlx_impl_ext::snake, "x"_a, "alpha"_a, "inv_beta"_a,
        "x + inv_beta * sin(alpha * x)**2 for channels-last x (..., C), float32 alpha and "
        "inv_beta (C,); fp32 math, on the CPU stream.");
  m.def("logsumexp_lastaxis", &mlx_impl_ext::logsumexp_lastaxis, "x"_a,
        "log(sum(exp(x))) over the last axis (float32 result, sum in double), CPU stream.");
  m.def("attention", &mlx_impl_ext::attention, "q"_a, "kt"_a, "v"_a,
        "softmax(q @ kt) @ v for float32 (..., T, D), (..., D, S), (..., S, Dv), query-blocked.");
  m.def("multihead_attention", &mlx_impl_ext::multihead_attention, "q"_a, "k"_a, "v"_a,
        "n_head"_a, "scale"_a,
        "Unmasked attention on (B, T, H*D), (B, S, H*D), (B, S, H*Dv); softmax(scale q k^T) v "
        "per head, no head transposes.");
  m.def("matvec", &mlx_impl_ext::matvec, "x"_a, "w"_a, "bias"_a = nb::none(),
        "x (..., K) @ w.T (+ bias) for float32 w (N, K): one cblas_sgemv per row of x.");
  m.def("layer_norm", &mlx_impl_ext::layer_norm, "x"_a, "weight"_a, "bias"_a, "eps"_a,
        "F.layer_norm over the last axis for float32 (..., C); sums in double.");
  m.def("num_threads", &mlx_impl_ext::num_threads,
        "Threads the kernels split rows over (CPUs this process may use).");
#if defined(_OPENMP)
  m.attr("threading") = "openmp";
#else
  m.attr("threading") = "std::thread";
#endif
#if defined(MLX_IMPL_EXT_ARCH)
  m.attr("arch") = MLX_IMPL_EXT_ARCH;
#else
  m.attr("arch") = "unknown";
#endif
}
