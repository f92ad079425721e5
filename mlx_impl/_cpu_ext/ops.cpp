#include "ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "kernels.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_impl_ext {

int num_threads() {
  static const int n = [] {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      return std::max(1, CPU_COUNT(&set));
    }
#endif
    return std::max(1, int(std::thread::hardware_concurrency()));
  }();
  return n;
}

namespace {

// Row-major access to a kernel input inside its dispatched task. A row-contiguous array is read
// in place; any other layout (a transposed or broadcast view) is first gathered into an owned
// buffer. The ops take their inputs as they are instead of wrapping each in mx::contiguous: that
// node costs ~8 us to dispatch even when it has nothing to copy, and a whisper-base decoding
// step had 215 of them (weights included), ~1.8 ms of its ~17 ms.
template <class T>
class Packed {
 public:
  explicit Packed(const mx::array& a)
      : src_(a.data<T>()),
        contiguous_(a.flags().row_contiguous),
        shape_(a.shape()),
        strides_(a.strides()),
        size_(a.size()) {}

  // The elements in row-major order; call it from the dispatched task (the producer's data is
  // ready there, not when eval_cpu runs).
  const T* get() {
    if (contiguous_) return src_;
    if (copy_.size() != size_) gather();
    return copy_.data();
  }

 private:
  void gather() {
    copy_.resize(size_);
    if (size_ == 0) return;
    if (shape_.empty()) {
      copy_[0] = src_[0];
      return;
    }
    size_t nd = shape_.size();
    size_t inner = size_t(shape_.back());
    int64_t inner_stride = strides_.back();
    std::vector<int64_t> index(nd, 0);
    int64_t offset = 0;
    for (size_t o = 0; o < size_ / inner; ++o) {
      T* dst = copy_.data() + o * inner;
      for (size_t i = 0; i < inner; ++i) dst[i] = src_[offset + int64_t(i) * inner_stride];
      for (size_t d = nd - 1; d-- > 0;) {  // next index over the outer axes, last fastest
        if (++index[d] < shape_[d]) {
          offset += strides_[d];
          break;
        }
        offset -= strides_[d] * (shape_[d] - 1);
        index[d] = 0;
      }
    }
  }

  const T* src_;
  bool contiguous_;
  mx::Shape shape_;
  mx::Strides strides_;
  size_t size_;
  std::vector<T> copy_;
};

// Below this many elements per thread, starting a thread costs more than it saves.
constexpr size_t kMinElemsPerThread = 1 << 15;

// Run fn(t) for t in [0, nt) on nt threads, the calling thread being one of them.
// Built with OpenMP (g++ on Linux), the threads are the OpenMP runtime's pool: the pool MKL's GNU
// threading layer uses too (mlx_impl/_blas.py), whose workers spin for a while after each MKL
// product before they sleep. Threads of our own then competed with a spinning worker for the
// cores (whisper-base's layer norms ~3x slower after a product; making the workers sleep at once
// instead cost ~4 ms per decoding step in wake-ups); run on the pool, the spinning worker is the
// one that picks the work up. Without OpenMP, std::threads started per call (~30 us each).
template <class F>
void run_threads(size_t nt, F fn) {
  if (nt <= 1) {
    fn(size_t(0));
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(int(nt)) schedule(static, 1)
  for (long t = 0; t < long(nt); ++t) fn(size_t(t));
#else
  std::vector<std::thread> workers;
  workers.reserve(nt - 1);
  for (size_t t = 1; t < nt; ++t) workers.emplace_back(fn, t);
  fn(size_t(0));
  for (auto& w : workers) w.join();
#endif
}

// Run fn(row_begin, row_end) over [0, rows) split into contiguous blocks, one per thread.
template <class F>
void parallel_rows(size_t rows, size_t row_len, F fn) {
  size_t by_size = std::max<size_t>(1, rows * row_len / kMinElemsPerThread);
  size_t nt = std::min({size_t(num_threads()), rows, by_size});
  run_threads(nt, [&](size_t t) { fn(rows * t / nt, rows * (t + 1) / nt); });
}

// Apply a float32 row function to rows of T (float16/bfloat16) through a float32 buffer.
template <class T, class RowFn>
void rows_via_f32(const T* x, T* y, size_t begin, size_t end, size_t len, RowFn row_fn) {
  std::vector<float> buf(len);
  for (size_t r = begin; r < end; ++r) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    for (size_t i = 0; i < len; ++i) buf[i] = static_cast<float>(xr[i]);
    row_fn(buf.data(), buf.data(), len);
    for (size_t i = 0; i < len; ++i) yr[i] = static_cast<T>(buf[i]);
  }
}

template <class T>
void run_rows(RowKernel::Op op, const T* x, T* y, size_t rows, size_t len) {
  auto row_fn = op == RowKernel::Op::softmax ? &softmax_row
                : op == RowKernel::Op::gelu  ? &gelu_span
                                             : &sin_span;
  parallel_rows(rows, len, [=](size_t begin, size_t end) {
    if constexpr (std::is_same_v<T, float>) {
      for (size_t r = begin; r < end; ++r) row_fn(x + r * len, y + r * len, len);
    } else {
      rows_via_f32<T>(x, y, begin, end, len, row_fn);
    }
  });
}

// launch(T{}) with T the element type of a float32/float16/bfloat16 dtype.
template <class F>
void with_float_type(mx::Dtype dtype, const char* op, F launch) {
  switch (dtype) {
    case mx::float32:
      launch(float{});
      break;
    case mx::float16:
      launch(mx::float16_t{});
      break;
    case mx::bfloat16:
      launch(mx::bfloat16_t{});
      break;
    default:
      throw std::runtime_error(std::string(op) + ": unsupported dtype");
  }
}

void check_input(const mx::array& x, const char* op) {
  if (x.dtype() != mx::float32 && x.dtype() != mx::float16 && x.dtype() != mx::bfloat16) {
    throw std::invalid_argument(
        std::string(op) + ": expected float32, float16 or bfloat16, got another dtype; "
        "cast with .astype(mx.float32)");
  }
}

}  // namespace

void RowKernel::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& x = inputs[0];
  // Write in place when the input is a row-contiguous temporary nobody else holds (qk scores in
  // attention, the MLP hidden): saves allocating and page-faulting a fresh buffer; the kernels
  // allow y == x.
  if (x.flags().row_contiguous && x.is_donatable() && x.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(x);
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }
  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(x);
  encoder.set_output_array(out);

  size_t size = x.size();
  if (size == 0) return;
  size_t len;
  if (op_ == Op::softmax) {
    len = size_t(x.shape().back());
  } else {
    // GELU and sin are elementwise: treat the flat array as rows of up to 4096 (a cache-sized block).
    len = std::min<size_t>(size, 4096);
  }
  size_t rows = size / len;
  size_t rest = size - rows * len;
  Op op = op_;

  auto launch = [&](auto tag) {
    using T = decltype(tag);
    encoder.dispatch([op, xin = Packed<T>(x), yp = out.data<T>(), rows, len, rest]() mutable {
      const T* xp = xin.get();
      run_rows<T>(op, xp, yp, rows, len);
      if (rest > 0) run_rows<T>(op, xp + rows * len, yp + rows * len, 1, rest);
    });
  };
  with_float_type(x.dtype(), name(), launch);
}

void RowKernel::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error(
      std::string(name()) + " is a CPU-only kernel; on a GPU use MLX's native ops "
      "(mlx_impl.layers.activations picks them by device)");
}

namespace {

// Always the CPU stream: on Apple silicon the arrays are in unified memory, so this is correct
// whatever the default device is (mlx_impl still picks MLX's native ops on a GPU).
mx::array make(const mx::array& x, RowKernel::Op op, const char* what) {
  check_input(x, what);
  mx::Stream s = mx::default_stream(mx::Device::cpu);
  return mx::array(x.shape(), x.dtype(), std::make_shared<RowKernel>(s, op), {x});
}

}  // namespace

mx::array softmax_lastaxis(const mx::array& x) {
  if (x.ndim() == 0) {
    throw std::invalid_argument(
        "softmax_lastaxis: expected an array with at least one axis, got a scalar");
  }
  return make(x, RowKernel::Op::softmax, "softmax_lastaxis");
}

mx::array gelu_erf(const mx::array& x) {
  return make(x, RowKernel::Op::gelu, "gelu_erf");
}

mx::array sin(const mx::array& x) {
  return make(x, RowKernel::Op::sin, "sin");
}

// ---- snake ----------------------------------------------------------------------------------

namespace {

// Elements per block: a multiple of C near 4096, so alpha and inv_beta tiled to one block line up
// with every block of the flat array (element i has channel i mod C) and short channel axes still
// fill the 16-lane vectors.
size_t snake_block(size_t c) {
  return c * std::max<size_t>(1, 4096 / c);
}

}  // namespace

void Snake::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& x = inputs[0];
  if (x.flags().row_contiguous && x.is_donatable() && x.itemsize() == out.itemsize()) {
    out.copy_shared_buffer(x);  // snake_span allows y == x
  } else {
    out.set_data(mx::allocator::malloc(out.nbytes()));
  }
  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (const auto& a : inputs) encoder.set_input_array(a);
  encoder.set_output_array(out);
  const size_t size = x.size();
  if (size == 0) return;
  const size_t c = size_t(x.shape().back());
  const size_t block = std::min(snake_block(c), size);  // size is a multiple of c
  const size_t rows = size / block, rest = size - rows * block;
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    encoder.dispatch([xin = Packed<T>(x), ain = Packed<float>(inputs[1]),
                      bin = Packed<float>(inputs[2]), yp = out.data<T>(), c, block, rows,
                      rest]() mutable {
      const T* xp = xin.get();
      const float* ap = ain.get();
      const float* bp = bin.get();
      std::vector<float> alpha(block), inv_beta(block);
      for (size_t i = 0; i < block; ++i) {
        alpha[i] = ap[i % c];
        inv_beta[i] = bp[i % c];
      }
      auto span = [&](const T* xs, T* ys, size_t n, float* buf) {
        if constexpr (std::is_same_v<T, float>) {
          snake_span(xs, alpha.data(), inv_beta.data(), ys, n);
        } else {
          for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(xs[i]);
          snake_span(buf, alpha.data(), inv_beta.data(), buf, n);
          for (size_t i = 0; i < n; ++i) ys[i] = static_cast<T>(buf[i]);
        }
      };
      parallel_rows(rows, block, [&](size_t begin, size_t end) {
        std::vector<float> buf(std::is_same_v<T, float> ? 0 : block);
        for (size_t r = begin; r < end; ++r) span(xp + r * block, yp + r * block, block, buf.data());
      });
      if (rest > 0) {
        std::vector<float> buf(std::is_same_v<T, float> ? 0 : rest);
        span(xp + rows * block, yp + rows * block, rest, buf.data());
      }
    });
  };
  with_float_type(x.dtype(), name(), launch);
}

void Snake::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error(
      "MlxImplSnake is a CPU-only kernel; on a GPU use MLX's native ops "
      "(mlx_impl.layers.snake picks them by device)");
}

mx::array snake(const mx::array& x, const mx::array& alpha, const mx::array& inv_beta) {
  check_input(x, "snake");
  if (alpha.dtype() != mx::float32 || inv_beta.dtype() != mx::float32) {
    throw std::invalid_argument(
        "snake: expected float32 alpha and inv_beta; cast with .astype(mx.float32)");
  }
  if (x.ndim() < 1 || alpha.ndim() != 1 || inv_beta.ndim() != 1 ||
      alpha.shape(0) != x.shape(-1) || inv_beta.shape(0) != x.shape(-1)) {
    throw std::invalid_argument(
        "snake: expected channels-last x (..., C) with alpha (C,) and inv_beta (C,)");
  }
  mx::Stream s = mx::default_stream(mx::Device::cpu);
  return mx::array(x.shape(), x.dtype(), std::make_shared<Snake>(s), {x, alpha, inv_beta});
}

// ---- log-sum-exp ----------------------------------------------------------------------------

namespace {

// One row of n >= 1 floats: m + log(sum exp(x - m)), the sum in double (exp_shifted_sum writes
// the exps to `scratch`). An infinite max is the answer itself (x - m would be nan).
float logsumexp_row(const float* x, size_t n, float* scratch) {
  const float m = row_max(x, n);
  if (std::isinf(m)) return m;
  return float(double(m) + std::log(exp_shifted_sum(x, scratch, n, m)));
}

}  // namespace

void LogSumExp::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& x = inputs[0];
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(x);
  encoder.set_output_array(out);
  if (out.size() == 0) return;
  const size_t len = size_t(x.shape().back()), rows = out.size();
  auto launch = [&](auto tag) {
    using T = decltype(tag);
    encoder.dispatch([xin = Packed<T>(x), yp = out.data<float>(), rows, len]() mutable {
      const T* xp = xin.get();
      parallel_rows(rows, len, [=](size_t begin, size_t end) {
        std::vector<float> row(std::is_same_v<T, float> ? 0 : len), scratch(len);
        for (size_t r = begin; r < end; ++r) {
          const float* xr;
          if constexpr (std::is_same_v<T, float>) {
            xr = xp + r * len;
          } else {
            for (size_t i = 0; i < len; ++i) row[i] = static_cast<float>(xp[r * len + i]);
            xr = row.data();
          }
          yp[r] = logsumexp_row(xr, len, scratch.data());
        }
      });
    });
  };
  with_float_type(x.dtype(), name(), launch);
}

void LogSumExp::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error(
      "MlxImplLogSumExp is a CPU-only kernel; on a GPU use mx.logsumexp "
      "(mlx_impl.layers.activations.logsumexp picks it by device)");
}

mx::array logsumexp_lastaxis(const mx::array& x) {
  check_input(x, "logsumexp_lastaxis");
  if (x.ndim() == 0 || x.shape().back() == 0) {
    throw std::invalid_argument(
        "logsumexp_lastaxis: expected an array whose last axis is not empty");
  }
  mx::Shape shape = x.shape();
  shape.pop_back();
  mx::Stream s = mx::default_stream(mx::Device::cpu);
  return mx::array(shape, mx::float32, std::make_shared<LogSumExp>(s), {x});
}

// ---- attention ------------------------------------------------------------------------------

// The BLAS the process loaded: MKL or OpenBLAS when mlx_impl preloaded one (RTLD_GLOBAL, so it
// comes first in symbol lookup), else the one MLX's wheel bundles. Declared here to avoid a header.
extern "C" void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k,
                            float alpha, const float* a, int lda, const float* b, int ldb,
                            float beta, float* c, int ldc);

extern "C" void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float* a,
                            int lda, const float* x, int incx, float beta, float* y, int incy);

namespace {

constexpr int kRowMajor = 101, kNoTrans = 111;

// The BLAS's thread-count controls, looked up at run time (absent: the attention leaves
// threading to the BLAS). MKL (mlx_impl preloads it when installed): MKL_Set_Num_Threads_Local,
// which applies to the calling thread only, so each of our workers sets itself to one thread and
// restores its previous value. OpenBLAS: openblas_set_num_threads, process-wide, so the caller
// sets one thread around the whole op and restores the count after.
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();
using SetLocalThreadsFn = int (*)(int);  // returns the previous thread-local count (0: global)

struct BlasThreadControl {
  SetLocalThreadsFn mkl_set_local = nullptr;
  SetThreadsFn openblas_set = nullptr;
  GetThreadsFn openblas_get = nullptr;
  BlasThreadControl() {
#if defined(__linux__) || defined(__APPLE__)
    mkl_set_local =
        reinterpret_cast<SetLocalThreadsFn>(dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads_Local"));
    if (mkl_set_local == nullptr) {
      openblas_set =
          reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
      openblas_get =
          reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    }
#endif
  }
  bool available() const {
    return mkl_set_local != nullptr || (openblas_set != nullptr && openblas_get != nullptr);
  }
};

const BlasThreadControl& blas_threads() {
  static const BlasThreadControl control;
  return control;
}

// Query rows per tile. A tile is one head's block of query rows: its scores (rows x S floats,
// 1.5 MB at S = 1500) stay in the core's L2 between the two products. Measured on whisper-base's
// encoder shape (1, 8, 1500, 1500) x 64, 2 threads, one tile per thread at a time with
// single-threaded sgemm: 64 rows 35 ms, 128: 33, 256: 33, 512: 38.
constexpr size_t kQueryBlock = 256;

// Multiply-adds below which the attention runs on the calling thread alone (one decoding step's
// cross-attention in whisper-base: 8 heads x 1500 keys x 128 = 1.5M).
constexpr size_t kMinThreadedWork = size_t(1) << 23;

constexpr int kTrans = 112;

// Where one head's q, keys, v and output live. Row r of head (b, h)'s q is at
// q + b * q_batch + h * q_head + r * ldq, and likewise for the others; keys are (S, D) rows
// (k_transposed: (D, S) rows). Both layouts of `attention` and `multihead_attention` map here.
struct AttentionLayout {
  size_t batches, heads, t, s, d, dv;
  size_t q_batch, q_head, ldq;
  size_t k_batch, k_head, ldk;
  bool k_transposed;
  size_t v_batch, v_head, ldv;
  size_t o_batch, o_head, ldo;
  float scale;
};

// One tile: m query rows of one head. scores = scale * q k^T; e = exp(scores - row max) and its
// row sum; out = (e v) / sum. Normalising the Dv output values instead of the S probabilities
// saves a pass over the scores; the result differs from softmax(q k^T) v by float rounding only
// (tested).
// Up to this many query rows a tile runs as matrix-vector products (sgemv), a row at a time:
// sgemm first packs all of K and V, which for the one query row of a decoding step costs about
// as much as the product itself.
constexpr size_t kMatvecRows = 2;

void attention_tile(const AttentionLayout& L, const float* q, const float* k, const float* v,
                    float* out, float* scores, float* totals, size_t m) {
  if (m <= kMatvecRows) {
    for (size_t r = 0; r < m; ++r) {  // scores_r = scale * K q_r, K stored (S, D) or (D, S)
      cblas_sgemv(kRowMajor, L.k_transposed ? kTrans : kNoTrans,
                  int(L.k_transposed ? L.d : L.s), int(L.k_transposed ? L.s : L.d), L.scale, k,
                  int(L.ldk), q + r * L.ldq, 1, 0.0f, scores + r * L.s, 1);
    }
  } else {
    cblas_sgemm(kRowMajor, kNoTrans, L.k_transposed ? kNoTrans : kTrans, int(m), int(L.s),
                int(L.d), L.scale, q, int(L.ldq), k, int(L.ldk), 0.0f, scores, int(L.s));
  }
  for (size_t r = 0; r < m; ++r) {
    float* row = scores + r * L.s;
    totals[r] = float(exp_shifted_sum(row, row, L.s, row_max(row, L.s)));
  }
  if (m <= kMatvecRows) {
    for (size_t r = 0; r < m; ++r) {  // out_r = V^T e_r
      cblas_sgemv(kRowMajor, kTrans, int(L.s), int(L.dv), 1.0f, v, int(L.ldv), scores + r * L.s,
                  1, 0.0f, out + r * L.ldo, 1);
    }
  } else {
    cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, int(m), int(L.dv), int(L.s), 1.0f, scores,
                int(L.s), v, int(L.ldv), 0.0f, out, int(L.ldo));
  }
  for (size_t r = 0; r < m; ++r) {
    for (size_t c = 0; c < L.dv; ++c) out[r * L.ldo + c] /= totals[r];
  }
}

// Tiles (one head's block of query rows) are shared out to our threads through an atomic
// counter, each running single-threaded sgemm: whisper-base's encoder attention 33 ms against
// 65 ms with OpenBLAS threading each product and the softmax rows split between threads.
// The BLAS is set to one thread for the duration and restored after (BlasThreadControl; MLX's
// CPU stream runs one op at a time, so no other product is in flight). Without thread controls
// the tiles run in turn and the BLAS threads each product.
void attention_f32(const AttentionLayout& L, const float* q, const float* k, const float* v,
                   float* out) {
  size_t blocks = (L.t + kQueryBlock - 1) / kQueryBlock;
  size_t tiles = L.batches * L.heads * blocks;
  const BlasThreadControl& blas = blas_threads();
  // Threads only where there is work to share: starting one costs tens of microseconds, about a
  // whole decoding step's cross-attention over 1500 keys.
  size_t work = L.batches * L.heads * L.t * L.s * (L.d + L.dv);
  size_t nt = blas.available() && work >= kMinThreadedWork ? std::min(size_t(num_threads()), tiles)
                                                           : 1;
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    const bool local = nt > 1 && blas.mkl_set_local != nullptr;
    const int local_saved = local ? blas.mkl_set_local(1) : 0;
    std::vector<float> scores(std::min(kQueryBlock, L.t) * L.s), totals(kQueryBlock);
    for (size_t i = next++; i < tiles; i = next++) {
      size_t bh = i / blocks, b = bh / L.heads, h = bh % L.heads;
      size_t r0 = (i % blocks) * kQueryBlock;
      attention_tile(L, q + b * L.q_batch + h * L.q_head + r0 * L.ldq,
                     k + b * L.k_batch + h * L.k_head, v + b * L.v_batch + h * L.v_head,
                     out + b * L.o_batch + h * L.o_head + r0 * L.ldo, scores.data(),
                     totals.data(), std::min(kQueryBlock, L.t - r0));
    }
    if (local) blas.mkl_set_local(local_saved);
  };
  if (nt <= 1) {
    worker();
    return;
  }
  const int saved = blas.openblas_get ? blas.openblas_get() : 0;
  if (blas.openblas_set) blas.openblas_set(1);
  run_threads(nt, [&](size_t) { worker(); });
  if (blas.openblas_set) blas.openblas_set(saved);
}

}  // namespace

void Attention::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& q = inputs[0];
  const mx::array& k = inputs[1];
  const mx::array& v = inputs[2];
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream());
  encoder.set_input_array(q);
  encoder.set_input_array(k);
  encoder.set_input_array(v);
  encoder.set_output_array(out);
  if (out.size() == 0) return;
  AttentionLayout L;
  if (n_head_ == 0) {  // q (..., T, D), kt (..., D, S), v (..., S, Dv): leading axes are heads
    L.t = q.shape(-2), L.d = q.shape(-1), L.s = k.shape(-1), L.dv = v.shape(-1);
    L.batches = 1, L.heads = q.size() / (L.t * L.d);
    L.q_batch = 0, L.q_head = L.t * L.d, L.ldq = L.d;
    L.k_batch = 0, L.k_head = L.d * L.s, L.ldk = L.s, L.k_transposed = true;
    L.v_batch = 0, L.v_head = L.s * L.dv, L.ldv = L.dv;
    L.o_batch = 0, L.o_head = L.t * L.dv, L.ldo = L.dv;
  } else {  // q (B, T, H*D), k (B, S, H*D), v (B, S, H*Dv): heads side by side in each row
    size_t h = n_head_;
    L.batches = q.shape(0), L.heads = h, L.t = q.shape(1), L.s = k.shape(1);
    L.d = q.shape(2) / h, L.dv = v.shape(2) / h;
    L.q_batch = L.t * h * L.d, L.q_head = L.d, L.ldq = h * L.d;
    L.k_batch = L.s * h * L.d, L.k_head = L.d, L.ldk = h * L.d, L.k_transposed = false;
    L.v_batch = L.s * h * L.dv, L.v_head = L.dv, L.ldv = h * L.dv;
    L.o_batch = L.t * h * L.dv, L.o_head = L.dv, L.ldo = h * L.dv;
  }
  L.scale = scale_;
  encoder.dispatch([L, qin = Packed<float>(q), kin = Packed<float>(k), vin = Packed<float>(v),
                    op = out.data<float>()]() mutable {
    attention_f32(L, qin.get(), kin.get(), vin.get(), op);
  });
}

void Attention::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error(
      "MlxImplAttention is a CPU-only kernel; on a GPU use mx.fast.scaled_dot_product_attention");
}

mx::array attention(const mx::array& q, const mx::array& kt, const mx::array& v) {
  if (q.dtype() != mx::float32 || kt.dtype() != mx::float32 || v.dtype() != mx::float32) {
    throw std::invalid_argument("attention: expected float32 q, kt and v");
  }
  if (q.ndim() < 2 || kt.ndim() != q.ndim() || v.ndim() != q.ndim()) {
    throw std::invalid_argument("attention: q, kt and v need the same number of axes (>= 2)");
  }
  int n = q.ndim();
  for (int a = 0; a < n - 2; ++a) {
    if (q.shape(a) != kt.shape(a) || q.shape(a) != v.shape(a)) {
      throw std::invalid_argument("attention: q, kt and v must share their leading axes");
    }
  }
  if (kt.shape(-2) != q.shape(-1) || v.shape(-2) != kt.shape(-1)) {
    throw std::invalid_argument(
        "attention: expected q (..., T, D), kt (..., D, S) and v (..., S, Dv)");
  }
  mx::Stream st = mx::default_stream(mx::Device::cpu);
  std::vector<mx::array> in = {q, kt, v};
  mx::Shape shape = q.shape();
  shape.back() = v.shape(-1);
  return mx::array(shape, mx::float32, std::make_shared<Attention>(st, 0, 1.0f), std::move(in));
}

mx::array multihead_attention(const mx::array& q, const mx::array& k, const mx::array& v,
                              int n_head, float scale) {
  if (q.dtype() != mx::float32 || k.dtype() != mx::float32 || v.dtype() != mx::float32) {
    throw std::invalid_argument("multihead_attention: expected float32 q, k and v");
  }
  if (q.ndim() != 3 || k.ndim() != 3 || v.ndim() != 3) {
    throw std::invalid_argument(
        "multihead_attention: expected q (B, T, H*D), k (B, S, H*D) and v (B, S, H*Dv)");
  }
  if (n_head < 1 || q.shape(2) % n_head != 0 || v.shape(2) % n_head != 0) {
    throw std::invalid_argument(
        "multihead_attention: n_head must be >= 1 and divide the channels of q and v");
  }
  if (k.shape(0) != q.shape(0) || v.shape(0) != q.shape(0) || k.shape(2) != q.shape(2) ||
      v.shape(1) != k.shape(1)) {
    throw std::invalid_argument(
        "multihead_attention: expected q (B, T, H*D), k (B, S, H*D) and v (B, S, H*Dv) with "
        "the same B, H*D and S");
  }
  mx::Stream st = mx::default_stream(mx::Device::cpu);
  std::vector<mx::array> in = {q, k, v};
  mx::Shape shape = q.shape();
  shape.back() = v.shape(2);
  return mx::array(shape, mx::float32, std::make_shared<Attention>(st, n_head, scale),
                   std::move(in));
}

// ---- matvec ---------------------------------------------------------------------------------

void Matvec::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  const mx::array& x = inputs[0];
  const mx::array& w = inputs[1];
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (const auto& a : inputs) encoder.set_input_array(a);
  encoder.set_output_array(out);
  if (out.size() == 0) return;
  size_t n = w.shape(0), k = w.shape(1), rows = x.size() / k;
  bool has_bias = inputs.size() == 3;
  encoder.dispatch([xin = Packed<float>(x), win = Packed<float>(w),
                    bin = Packed<float>(has_bias ? inputs[2] : w), has_bias,
                    op = out.data<float>(), n, k, rows]() mutable {
    const float* xp = xin.get();
    const float* wp = win.get();
    const float* bp = has_bias ? bin.get() : nullptr;
    for (size_t r = 0; r < rows; ++r) {
      float* y = op + r * n;
      if (bp != nullptr) std::copy(bp, bp + n, y);
      cblas_sgemv(kRowMajor, kNoTrans, int(n), int(k), 1.0f, wp, int(k), xp + r * k, 1,
                  bp != nullptr ? 1.0f : 0.0f, y, 1);
    }
  });
}

void Matvec::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("MlxImplMatvec is a CPU-only kernel; on a GPU use a matmul");
}

mx::array matvec(const mx::array& x, const mx::array& w, const std::optional<mx::array>& bias) {
  if (x.dtype() != mx::float32 || w.dtype() != mx::float32 ||
      (bias && bias->dtype() != mx::float32)) {
    throw std::invalid_argument("matvec: expected float32 x, w and bias");
  }
  if (x.ndim() < 1 || w.ndim() != 2 || x.shape(-1) != w.shape(1)) {
    throw std::invalid_argument("matvec: expected x (..., K) and w (N, K)");
  }
  if (bias && (bias->ndim() != 1 || bias->shape(0) != w.shape(0))) {
    throw std::invalid_argument("matvec: expected bias (N,)");
  }
  mx::Stream st = mx::default_stream(mx::Device::cpu);
  std::vector<mx::array> in = {x, w};
  if (bias) in.push_back(*bias);
  mx::Shape shape = x.shape();
  shape.back() = w.shape(0);
  return mx::array(shape, mx::float32, std::make_shared<Matvec>(st), std::move(in));
}

// ---- layer norm -----------------------------------------------------------------------------

namespace {

// sum of f(x[i]) in double over 8 interleaved partial sums (lanes the compiler can vectorise
// without reassociating), then the partials in order: deterministic for a given length.
template <class F>
double sum_f64(const float* x, size_t n, F f) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) acc[j] += f(x[i + j]);
  }
  for (; i < n; ++i) acc[i % 8] += f(x[i]);
  double total = 0.0;
  for (double a : acc) total += a;
  return total;
}

}  // namespace

void LayerNorm::eval_cpu(const std::vector<mx::array>& inputs, mx::array& out) {
  out.set_data(mx::allocator::malloc(out.nbytes()));
  auto& encoder = mx::cpu::get_command_encoder(stream());
  for (const auto& a : inputs) encoder.set_input_array(a);
  encoder.set_output_array(out);
  if (out.size() == 0) return;
  size_t c = inputs[0].shape(-1), rows = inputs[0].size() / c;
  encoder.dispatch([xin = Packed<float>(inputs[0]), win = Packed<float>(inputs[1]),
                    bin = Packed<float>(inputs[2]), yp = out.data<float>(), rows, c,
                    eps = eps_]() mutable {
    const float* xp = xin.get();
    const float* wp = win.get();
    const float* bp = bin.get();
    parallel_rows(rows, c, [=](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) {
        const float* x = xp + r * c;
        float* y = yp + r * c;
        const float mean = float(sum_f64(x, c, [](float v) { return double(v); }) / double(c));
        const double sq = sum_f64(x, c, [mean](float v) {
          const double d = double(v - mean);
          return d * d;
        });
        const float inv = 1.0f / std::sqrt(float(sq / double(c)) + eps);
        for (size_t i = 0; i < c; ++i) y[i] = (x[i] - mean) * inv * wp[i] + bp[i];
      }
    });
  });
}

void LayerNorm::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::runtime_error("MlxImplLayerNorm is a CPU-only kernel; on a GPU use mx.fast.layer_norm");
}

mx::array layer_norm(const mx::array& x, const mx::array& weight, const mx::array& bias,
                     float eps) {
  if (x.dtype() != mx::float32 || weight.dtype() != mx::float32 || bias.dtype() != mx::float32) {
    throw std::invalid_argument("layer_norm: expected float32 x, weight and bias");
  }
  if (x.ndim() < 1 || weight.ndim() != 1 || bias.ndim() != 1 ||
      weight.shape(0) != x.shape(-1) || bias.shape(0) != x.shape(-1)) {
    throw std::invalid_argument("layer_norm: expected x (..., C), weight (C,) and bias (C,)");
  }
  mx::Stream st = mx::default_stream(mx::Device::cpu);
  std::vector<mx::array> in = {x, weight, bias};
  return mx::array(x.shape(), mx::float32, std::make_shared<LayerNorm>(st, eps), std::move(in));
}

}  // namespace mlx_impl_ext
