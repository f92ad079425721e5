// MLX primitives for the CPU kernels in kernels.h: softmax over the last axis and exact GELU.
// CPU only: eval_gpu throws (mlx_impl uses MLX's native ops on Metal/CUDA).
#pragma once

#include "mlx/ops.h"
#include "mlx/primitives.h"

namespace mlx_impl_ext {

namespace mx = mlx::core;

// Softmax over the last axis; fp32 math, fp16/bf16 rounded once at the end.
mx::array softmax_lastaxis(const mx::array& x);

// Exact (erf) GELU; fp32 math, fp16/bf16 rounded once at the end.
mx::array gelu_erf(const mx::array& x);

// Threads the kernels split rows over (the CPUs this process may run on).
int num_threads();

// Unmasked attention softmax(q @ kt) @ v for float32 q (B, H, T, D), kt (B, H, D, S) (keys
// already transposed; any scaling already applied to q and kt), v (B, H, S, D) -> (B, H, T, D).
// Processed in blocks of query rows so the (rows, S) scores stay in cache instead of a
// (B, H, T, S) array in memory; the products run through the process's cblas_sgemm.
mx::array attention(const mx::array& q, const mx::array& kt, const mx::array& v);

class Attention : public mx::UnaryPrimitive {
 public:
  explicit Attention(mx::Stream stream) : mx::UnaryPrimitive(stream) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override { return "MlxImplAttention"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    return dynamic_cast<const Attention*>(&other) != nullptr;
  }

  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    mx::Shape s = inputs[0].shape();
    s.back() = inputs[2].shape().back();
    return {s};
  }
};

class RowKernel : public mx::UnaryPrimitive {
 public:
  enum class Op { softmax, gelu };

  RowKernel(mx::Stream stream, Op op) : mx::UnaryPrimitive(stream), op_(op) {}

  void eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) override;
  void eval_gpu(const std::vector<mx::array>& inputs, mx::array& out) override;

  const char* name() const override {
    return op_ == Op::softmax ? "MlxImplSoftmaxLastAxis" : "MlxImplGeluErf";
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
