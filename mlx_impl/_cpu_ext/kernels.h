// Row kernels for softmax and exact (erf) GELU in fp32: branch-free selects, integer bit tricks,
// no libm calls, written as templates over float and a 16-lane vector type so each loop runs
// the same operations on vectors and on its scalar remainder. Built with -ffp-contract=off and
// without -ffast-math: every build (SSE4.2, AVX2, AVX-512, NEON) gives the same bits.
// Coefficients: the minimax fits made for mlx_impl/layers/activations.py (see its docstring),
// used here with the same evaluation order.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mlx_impl_ext {

constexpr int kLanes = 16;

// Sixteen float (int32) lanes as one value: the GCC/clang vector extension, lowered to whatever
// vectors the ISA has (one zmm on AVX-512, two ymm on AVX2, four q registers on NEON). The
// functions below are templates over T = float or Lanes16, so the vector loops and their scalar
// remainders run the same operations in the same order and give the same bits.
typedef float Lanes16 __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t IntLanes16 __attribute__((vector_size(kLanes * sizeof(int32_t))));

template <class T>
struct IntOf {
  using type = int32_t;
};
template <>
struct IntOf<Lanes16> {
  using type = IntLanes16;
};
template <class T>
using IntOfT = typename IntOf<T>::type;

// c in every lane (T{} + c broadcasts for vectors and is c for float).
template <class T>
inline T splat(float c) {
  return T{} + c;
}

template <class T>
inline T bits_to_float(IntOfT<T> i) {
  T f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

template <class T>
inline IntOfT<T> float_to_bits(T f) {
  IntOfT<T> i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

template <class T>
inline T abs_value(T v) {
  return v < 0.0f ? -v : v;
}

// Clamp that lets nan through (both comparisons are false for nan).
template <class T>
inline T clamp_keep_nan(T v, float lo, float hi) {
  v = v < lo ? splat<T>(lo) : v;
  return v > hi ? splat<T>(hi) : v;
}

// 2**k for integer k in [-126, 127], built in the exponent field.
template <class T>
inline T pow2i(IntOfT<T> k) {
  return bits_to_float<T>((k + 127) << 23);
}

// The shared core of the exps below: k = round(a / ln 2) by adding 1.5 * 2**23 (the integer
// lands in the low mantissa bits), r = a - k ln2 in two parts (ln2_hi has 17 significant bits,
// so k * ln2_hi is exact) plus b, and e**r = 1 + r + r**2 q(r) on |r| <= ln2/2 (relative error
// 7.4e-9); returns e**r and sets k. nan stays nan (only bits are touched, nothing converts nan
// to int).
template <class T>
inline T exp_reduced(T a, T b, IntOfT<T>& k) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693145751953125f;
  const float ln2_lo = 1.42860676533018708e-06f;
  const float shifter = 12582912.0f;  // 1.5 * 2**23
  T t = a * log2e + shifter;
  T kf = t - shifter;
  k = float_to_bits(t) - float_to_bits(shifter);
  T r = ((a - kf * ln2_hi) - kf * ln2_lo) + b;
  T q = splat<T>(0.0013802652313735422f);
  q = q * r + 0.008374340479645753f;
  q = q * r + 0.041668616707262345f;
  q = q * r + 0.1666646084839465f;
  q = q * r + 0.4999999332254688f;
  return q * r * r + r + 1.0f;
}

// e**(a + b) where b is a small correction to a (|b| << 1; b = 0 for a plain exp): e**r from
// exp_reduced, then 2**k as two factors so results down to the subnormal range (a >= -103.9)
// and up to 2**128 * p are right.
// a is clamped to [-104, 89]: -inf -> 0, +inf -> inf; nan stays nan (the integer path only
// touches bits, never converts nan to int).
template <class T>
inline T exp_split(T a, T b) {
  IntOfT<T> k;
  T p = exp_reduced(clamp_keep_nan(a, -104.0f, 89.0f), b, k);
  IntOfT<T> k1 = k >> 1;
  return p * pow2i<T>(k1) * pow2i<T>(k - k1);
}

inline float exp_f32(float a) {
  return exp_split(a, 0.0f);
}

// e**a for a in [log(FLT_MIN), 0] (or nan): exp_split without its clamp and with 2**k as one
// factor (k >= -126 in this range), which gives the same bits there in fewer operations
// (softmax rows: ~20% less time in the exp). Callers select 0 below the range.
template <class T>
inline T exp_normal_nonpos(T a) {
  IntOfT<T> k;
  T p = exp_reduced(a, splat<T>(0.0f), k);  // b = +0 as in exp_f32 (turns r = -0 into +0)
  return p * pow2i<T>(k);
}

// Exact GELU x * Phi(x), Phi(x) = 0.5 erfc(-x / sqrt 2).
// |x| < sqrt 2: Phi = 0.5 + 0.5 erf(x / sqrt 2), erf(z) = z + z (P(z**2) - 1) (relative 3e-9).
// |x| >= sqrt 2: with u = |x|, Phi(-u) = 0.5 exp(-u**2 / 2) erfcx(u / sqrt 2), erfcx a polynomial
// in s = (z - 3) / (z + 3) on z in [1, 10.5] (relative 3.1e-10); Phi(x) = Phi(-u) for x < 0 and
// 1 - Phi(-u) otherwise. u**2 / 2 is formed from u split into 12 + 12 bits, so the exponent
// carries no fp32 rounding and the tail stays accurate relative to itself (the cancellation
// in 0.5 * (1 + erf(x / sqrt 2)) that torch has for x < 0 does not occur).
// Both branches are computed and one is selected (no data-dependent control flow).
template <class T>
inline T gelu_f32(T x) {
  const float sqrt1_2 = 0.70710678118654752f;
  T xs = x * sqrt1_2;
  T axs = abs_value(xs);

  // small branch
  T z2 = xs * xs;
  T p = splat<T>(8.047284867435181e-05f);
  p = p * z2 + -0.0008072007206053892f;
  p = p * z2 + 0.005195854714071426f;
  p = p * z2 + -0.026858149771889956f;
  p = p * z2 + 0.11283703258177617f;
  p = p * z2 + -0.37612638379589214f;
  p = p * z2 + 0.12837916709551257f;  // 2 / sqrt(pi) - 1
  T erf_small = xs + xs * p;
  T phi_small = 0.5f + 0.5f * erf_small;

  // tail branch: u in [sqrt 2, 10.5 sqrt 2]; exp(-u**2 / 2) = exp(a + b) with a exact
  T u = clamp_keep_nan(abs_value(x), 1.41421356237309505f, 14.849242404917499f);
  T u_hi = bits_to_float<T>(float_to_bits(u) & int32_t(0xfffff000));  // 12 significant bits
  T u_lo = u - u_hi;
  T a = -0.5f * (u_hi * u_hi);
  T b = -0.5f * (u_lo * (u + u_hi));
  T e = exp_split(a, b);
  T z = u * sqrt1_2;
  T s = (z - 3.0f) / (z + 3.0f);
  T rr = splat<T>(5.153584397817159e-05f);
  rr = rr * s + 3.685041249727698e-05f;
  rr = rr * s + -0.0005909692727861288f;
  rr = rr * s + 0.0007099012490677538f;
  rr = rr * s + 0.004267885273758694f;
  rr = rr * s + -0.0243927565027159f;
  rr = rr * s + 0.07166594818433422f;
  rr = rr * s + -0.15011592298903584f;
  rr = rr * s + 0.24560379830406154f;
  rr = rr * s + -0.32623356022579947f;
  rr = rr * s + 0.1790011511887414f;
  T tail = 0.5f * (e * rr);  // Phi(-|x|)
  T phi_big = x < 0.0f ? tail : 1.0f - tail;

  T phi = axs < 1.0f ? phi_small : phi_big;
  T r = x * phi;
  // Results below the smallest normal float (x < -13.2) are flushed to (signed) zero: a
  // subnormal GELU output makes the next matmul's x86 FPU take microcode assists (measured:
  // whisper-base encoder block 4's fc2 279 ms with ~150k subnormal inputs vs 22 ms without).
  // The change is below 1.2e-38 in absolute value.
  return abs_value(r) < 1.17549435e-38f ? x * 0.0f : r;
}

// GELU of n floats: 16 lanes at a time through the vector type, the rest one by one (same
// operations, same bits). Written with explicit vectors because g++'s auto-vectorised form of
// the scalar loop evaluated the exp three times per lane (if-converted clamps): 8 ns/element
// against 1.0 now (AVX-512, one thread).
inline void gelu_span(const float* x, float* y, size_t n) {
  size_t nv = n - n % kLanes;
  for (size_t i = 0; i < nv; i += kLanes) {
    Lanes16 v;
    std::memcpy(&v, x + i, sizeof v);
    v = gelu_f32(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  for (size_t i = nv; i < n; ++i) {
    y[i] = gelu_f32(x[i]);
  }
}

// ---- sin -------------------------------------------------------------------------------------
// sin of float32 arguments with |a| <= kSinMax (beyond that, and for inf/nan, callers recompute
// the element with double std::sin: see fix_large_sin). a = k pi/2 + r with k = round(a 2/pi):
// the reduction runs in double (a is exact there), pi/2 = kPio2Hi + kPio2Lo with kPio2Hi
// holding 33 significant bits, so k kPio2Hi is exact for |k| < 2**20 and a - k kPio2Hi is
// exact too; r = (a - k kPio2Hi) - k kPio2Lo is then within ~1e-16 relative of the true
// remainder even next to the multiples of pi/2 (a float32 Cody-Waite reduction loses the
// relative accuracy there: the error of k times the truncated pi/2 is fixed while r -> 0).
// r is rounded to float and sin(r) or cos(r) (|r| <= pi/4) taken by k mod 4:
//   sin r = r + r z (S0 + z (S1 + z S2)), cos r = 1 + (z^2 (C0 + z (C1 + z C2)) - z / 2), z = r^2,
// coefficients from a relative-error least-squares fit on Chebyshev nodes of [0, pi/4] (made for
// this file; max relative error 4.8e-9 (sin) and 1.3e-10 (cos) before float rounding).
// Both polynomials are evaluated and one selected (no data-dependent control flow).
constexpr float kSinMax = 1.0e6f;  // |k| <= 636620 < 2**20
constexpr double kTwoOverPi = 0.6366197723675814;
constexpr double kPio2Hi = 1.5707963267341256;   // 33 significant bits
constexpr double kPio2Lo = 6.077100506506192e-11;  // pi/2 - kPio2Hi, rel. error 6e-17
constexpr double kRoundShift = 6755399441055744.0;  // 1.5 * 2**52: adding it rounds to integer

typedef float Lanes8 __attribute__((vector_size(8 * sizeof(float))));
typedef double Doubles8 __attribute__((vector_size(8 * sizeof(double))));

// r = a - k pi/2 in double, rounded to float; kf = k as a float (exact for |k| < 2**24).
inline void reduce_pio2(float a, float& r, float& kf) {
  double ad = double(a);
  double kd = (ad * kTwoOverPi + kRoundShift) - kRoundShift;
  r = float((ad - kd * kPio2Hi) - kd * kPio2Lo);
  kf = float(kd);
}

inline void reduce_pio2(Lanes16 a, Lanes16& r, Lanes16& kf) {
  for (int h = 0; h < 2; ++h) {  // two halves of 8 lanes: the same operations as above, per lane
    Lanes8 a8;
    std::memcpy(&a8, reinterpret_cast<const float*>(&a) + 8 * h, sizeof a8);
    Doubles8 ad = __builtin_convertvector(a8, Doubles8);
    Doubles8 kd = (ad * kTwoOverPi + kRoundShift) - kRoundShift;
    Lanes8 r8 = __builtin_convertvector((ad - kd * kPio2Hi) - kd * kPio2Lo, Lanes8);
    Lanes8 k8 = __builtin_convertvector(kd, Lanes8);
    std::memcpy(reinterpret_cast<float*>(&r) + 8 * h, &r8, sizeof r8);
    std::memcpy(reinterpret_cast<float*>(&kf) + 8 * h, &k8, sizeof k8);
  }
}

template <class T>
inline T sin_f32(T a) {
  T r, kf;
  reduce_pio2(a, r, kf);
  // k mod 4 from the float k: adding 1.5 * 2**23 puts k in the low mantissa bits (only bits are
  // touched, so a nan or huge k from an out-of-range a gives garbage here, never undefined
  // behaviour; those elements are recomputed by the caller).
  const float shifter = 12582912.0f;
  IntOfT<T> k = float_to_bits<T>(kf + shifter) - float_to_bits<T>(splat<T>(shifter));
  T z = r * r;
  T ps = splat<T>(-0.00019518151f);
  ps = ps * z + 0.0083321864f;
  ps = ps * z + -0.16666655f;
  T s = r + r * z * ps;
  s = r == 0.0f ? r : s;  // keeps sin(-0) = -0 (-0 + the +0 correction would give +0)
  T pc = splat<T>(2.4432844e-05f);
  pc = pc * z + -0.0013887313f;
  pc = pc * z + 0.041666646f;
  T c = 1.0f + (z * z * pc - 0.5f * z);
  T v = (k & 1) != 0 ? c : s;
  return bits_to_float<T>(float_to_bits<T>(v) ^ ((k & 2) << 30));  // quadrants 2, 3: negate
}

// Elements whose argument is outside |a| <= kSinMax (or inf/nan): true where sin_f32 is not
// valid. Callers recompute those with double std::sin (correctly rounded to float in practice;
// inf and nan give nan, as torch).
inline bool sin_needs_fixup(float a) {
  return !(abs_value(a) <= kSinMax);
}

inline float sin_large(float a) {
  return float(std::sin(double(a)));
}

// sin_f32 on 16 lanes, with the lanes outside its range (rare: |a| > 1e6, inf, nan) recomputed
// by sin_large.
inline Lanes16 sin_lanes(Lanes16 a) {
  Lanes16 s = sin_f32(a);
  IntLanes16 bad = ~(abs_value(a) <= kSinMax);  // all ones where out of range or nan
  int32_t any = 0;
  for (int j = 0; j < kLanes; ++j) any |= bad[j];
  if (any != 0) {
    for (int j = 0; j < kLanes; ++j) {
      if (bad[j] != 0) s[j] = sin_large(a[j]);
    }
  }
  return s;
}

inline float sin_one(float a) {
  return sin_needs_fixup(a) ? sin_large(a) : sin_f32(a);
}

// sin of n floats (y may alias x).
inline void sin_span(const float* x, float* y, size_t n) {
  size_t nv = n - n % kLanes;
  for (size_t i = 0; i < nv; i += kLanes) {
    Lanes16 v;
    std::memcpy(&v, x + i, sizeof v);
    v = sin_lanes(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  for (size_t i = nv; i < n; ++i) y[i] = sin_one(x[i]);
}

// Snake over n elements of a channels-last array: y = x + inv_beta[c] * sin(alpha[c] x)^2,
// c = i mod C, with alpha and inv_beta already tiled to length n (n a multiple of C), in the
// composed form's order: a = alpha x in float, s = sin(a), s * s, times inv_beta, plus x
// (y may alias x).
inline void snake_span(const float* x, const float* alpha, const float* inv_beta, float* y,
                       size_t n) {
  size_t nv = n - n % kLanes;
  for (size_t i = 0; i < nv; i += kLanes) {
    Lanes16 v, al, ib;
    std::memcpy(&v, x + i, sizeof v);
    std::memcpy(&al, alpha + i, sizeof al);
    std::memcpy(&ib, inv_beta + i, sizeof ib);
    Lanes16 s = sin_lanes(al * v);
    Lanes16 out = v + ib * (s * s);
    std::memcpy(y + i, &out, sizeof out);
  }
  for (size_t i = nv; i < n; ++i) {
    float s = sin_one(alpha[i] * x[i]);
    y[i] = x[i] + inv_beta[i] * (s * s);
  }
}

constexpr float kMinNormal = 1.17549435e-38f;  // FLT_MIN
constexpr float kLogMinNormal = -87.3365448f;  // log(FLT_MIN): exp below this is subnormal

// Largest element of a row of n >= 1 floats (nan is skipped unless it comes first; a row holding
// nan still gives nan downstream, through x - max or the sum).
inline float row_max(const float* x, size_t n) {
  size_t nv = n - n % kLanes;
  float m = x[0];
  if (nv > 0) {
    Lanes16 acc;
    std::memcpy(&acc, x, sizeof acc);
    for (size_t i = kLanes; i < nv; i += kLanes) {
      Lanes16 v;
      std::memcpy(&v, x + i, sizeof v);
      acc = v > acc ? v : acc;
    }
    for (int j = 0; j < kLanes; ++j) m = acc[j] > m ? acc[j] : m;
  }
  for (size_t i = nv; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// y = exp(x - m) for a row of n floats (y may alias x); returns the sum of y, accumulated in 16
// float64 lanes (so the fp32 total is one rounding from the exact sum of the stored values).
// Values below the smallest normal float are flushed to zero (a change < 1.2e-38): subnormal
// weights made the attention's next product ~10x slower on x86 (microcode assists; (8, 1500,
// 1500) scores with 18% of them subnormal: 774 ms vs 70 ms).
inline double exp_shifted_sum(const float* x, float* y, size_t n, float m) {
  size_t nv = n - n % kLanes;
  double acc[kLanes] = {};
  for (size_t i = 0; i < nv; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      float d = x[i + j] - m;
      float e = d < kLogMinNormal ? 0.0f : exp_normal_nonpos(d);
      y[i + j] = e;
      acc[j] += double(e);
    }
  }
  double sum = 0.0;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  for (size_t i = nv; i < n; ++i) {
    float d = x[i] - m;
    float e = d < kLogMinNormal ? 0.0f : exp_normal_nonpos(d);
    y[i] = e;
    sum += double(e);
  }
  return sum;
}

// Softmax of one contiguous row of n >= 1 floats (y may alias x): e = exp(x - max), y = e / sum.
// Rows holding nan or +inf, and rows that are all -inf, give nan everywhere (the nan of x - max
// reaches the sum), as torch does. Probabilities below the smallest normal float are flushed.
inline void softmax_row(const float* x, float* y, size_t n) {
  float total = float(exp_shifted_sum(x, y, n, row_max(x, n)));
  for (size_t i = 0; i < n; ++i) {
    float p = y[i] / total;
    y[i] = p < kMinNormal ? 0.0f : p;
  }
}

}  // namespace mlx_impl_ext
