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
