// The extension's ops: softmax over the last axis, exact GELU, sin, Snake, logsumexp over the
// last axis (row kernels in kernels.h), attention on per-head and on projection layouts, one-row
// matvec, layer norm.
// CPU only: eval_gpu throws (mlx_impl uses MLX's native ops on Metal/CUDA).
#pragma once

#include <optional>

#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace mlx_impl_ext {

namespace mx = mlx::core;

// Softmax over the last axis; fp32 math, fp16/bf16 rounded once at the end.
mx::array softmax_lastaxis(const mx::array& x);

// Exact (erf) GELU; fp32 math, fp16/bf16 rounded once at the end.
mx::array gelu_erf(const mx::array& x);

// sin by kernels.h's vectorised float32 sin (double-precision reduction by pi/2, minimax
// polynomials; |x| > 1e6, inf and nan through double std::sin): fp32 math, fp16/bf16 rounded
// once. MLX 0.32.4's CPU sin is a scalar libm call per element.
mx::array sin(const mx::array& x);

// Snake on a channels-last x (..., C): x + inv_beta[c] * sin(alpha[c] x)^2 per element, float32
// alpha and inv_beta (C,), in the composed form's order (alpha x, sin, square, times inv_beta,
// plus x) with kernels.h's sin; fp32 math, fp16/bf16 x rounded once at the end. One op in place
// of MLX's multiply, scalar sin, square, multiply and add.
mx::array snake(const mx::array& x, const mx::array& alpha, const mx::array& inv_beta);

// log(sum(exp(x))) over the last axis of a float32/float16/bfloat16 array -> float32 of shape
// x.shape[:-1]: m + log(s) per row, m the row max and s = sum exp(x - m) accumulated in double
// (kernels.h's exp, so MLX's scalar CPU exp is never called). Rows that are all -inf give -inf,
// a row holding +inf gives +inf, nan gives nan (as torch.logsumexp). One op in place of the
// composed max / softmax / max / log (whisper's (1, 51865) logits: 0.3 ms -> 0.06 ms).
mx::array logsumexp_lastaxis(const mx::array& x);

// Threads the kernels split rows over (the CPUs this process may run on).
int num_threads();

// Unmasked attention softmax(q @ kt) @ v for float32 q (B, H, T, D), kt (B, H, D, S) (keys
// already transposed; any scaling already applied to q and kt), v (B, H, S, Dv) -> (B, H, T, Dv).
// Processed in blocks of query rows so the (rows, S) scores stay in cache instead of a
// (B, H, T, S) array in memory; the products run through the process's cblas_sgemm.
mx::array attention(const mx::array& q, const mx::array& kt, const mx::array& v);

// Unmasked multi-head attention on the projections' own layout: float32 q (B, T, H*D),
// k (B, S, H*D), v (B, S, H*Dv) -> (B, T, H*Dv), head h in columns [h*D, (h+1)*D), softmax(scale
// q_h k_h^T) v_h. sgemm reads each head through its leading dimension, so no (B, H, T, D) copies
// are made (whisper-base encoder layer: 8 ms of transposes and copies saved), and the scale is
// sgemm's alpha (exact when it is a power of two, as d**-0.5 for d = 64).
mx::array multihead_attention(const mx::array& q, const mx::array& k, const mx::array& v,
                              int n_head, float scale);

// x (..., K) @ w.T (+ bias) for float32 x, w (N, K) row-major and bias (N,): one cblas_sgemv
// per row of x. For the one-row products of token-by-token decoding, where sgemm first packs
// all of w (whisper-base vocabulary head, 51865 x 512, 2 threads: sgemv 4.4 ms, sgemm 10.6 ms).
mx::array matvec(const mx::array& x, const mx::array& w, const std::optional<mx::array>& bias);

// torch's F.layer_norm over the last axis for float32 x (..., C), weight and bias (C,): per row,
// mean and variance summed in double and rounded to float, then (x - mean) * rsqrt(var + eps)
// * weight + bias in float. One op instead of the ~10 of the composed form (whisper-base decoder
// step: 19 layer norms of one 512-row, 0.17 ms each composed).
mx::array layer_norm(const mx::array& x, const mx::array& weight, const mx::array& bias,
                     float eps);

class LayerNorm : public mx::UnaryPrimitive {
 public:
  LayerNorm(mx::Stream stream, float eps) : mx::UnaryPrimitive(stream), eps_(eps) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override { return "MlxImplLayerNorm"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    auto* o = dynamic_cast<const LayerNorm*>(&other);
    return o != nullptr && o->eps_ == eps_;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape()};
  }

 private:
  float eps_;
};

class Matvec : public mx::UnaryPrimitive {
 public:
  explicit Matvec(mx::Stream stream) : mx::UnaryPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override { return "MlxImplMatvec"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    return dynamic_cast<const Matvec*>(&other) != nullptr;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    mx::Shape s = inputs[0].shape();
    s.back() = inputs[1].shape(0);
    return {s};
  }
};

// n_head 0: the split layout of `attention`; n_head > 0: the merged layout of
// `multihead_attention`.
class Attention : public mx::UnaryPrimitive {
 public:
  Attention(mx::Stream stream, int n_head, float scale)
      : mx::UnaryPrimitive(stream), n_head_(n_head), scale_(scale) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override { return "MlxImplAttention"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    auto* o = dynamic_cast<const Attention*>(&other);
    return o != nullptr && o->n_head_ == n_head_ && o->scale_ == scale_;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    mx::Shape s = inputs[0].shape();
    s.back() = inputs[2].shape().back();
    return {s};
  }

 private:
  int n_head_;
  float scale_;
};

class LogSumExp : public mx::UnaryPrimitive {
 public:
  explicit LogSumExp(mx::Stream stream) : mx::UnaryPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override { return "MlxImplLogSumExp"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    return dynamic_cast<const LogSumExp*>(&other) != nullptr;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    mx::Shape s = inputs[0].shape();
    s.pop_back();
    return {s};
  }
};

class Snake : public mx::UnaryPrimitive {
 public:
  explicit Snake(mx::Stream stream) : mx::UnaryPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override { return "MlxImplSnake"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    return dynamic_cast<const Snake*>(&other) != nullptr;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape()};
  }
};

class RowKernel : public mx::UnaryPrimitive {
 public:
  enum class Op { softmax, gelu, sin };

  RowKernel(mx::Stream stream, Op op) : mx::UnaryPrimitive(stream), op_(op) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override {
    return op_ == Op::softmax ? "MlxImplSoftmaxLastAxis"
           : op_ == Op::gelu  ? "MlxImplGeluErf"
                              : "MlxImplSin";
  }

  bool is_equivalent(const mx::Primitive& other) const override {
    auto* o = dynamic_cast<const RowKernel*>(&other);
    return o != nullptr && o->op_ == op_;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    return {inputs[0].shape()};
  }

 private:
  Op op_;
};

}  // namespace mlx_impl_ext
