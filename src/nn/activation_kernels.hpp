// Private: the block kernels behind loom::nn's activations (src/nn/activation*.cpp).
//
// Arrays are processed in blocks of kBlock elements: a block's scratch arrays stay in L1, and
// float32 exp/log/tanh go through loom's vectorized kernels (numpy/vmath.hpp) block by block,
// so every activation is one pass over memory. elementwise() is the driver: forward kernel, then
// the primitive's bind with the VJP's kernel and its composite (differentiable) twin.
//
//   return elementwise(x, "relu",
//       []<typename T>(const T* a, T* y, std::int64_t n) { ... },                  // forward
//       []<typename T>(const T* a, const T* y, const T* g, T* d, std::int64_t n) { ... },  // VJP
//       [](const Array& a) { return relu(a); },                                    // impl
//       [](const Array& a, const Array& y, const Array& g) { ... });  // VJP in loom ops
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/composite_vjp.hpp"
#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/array.hpp"
#include "numpy/vmath.hpp"

// The block scratch arrays are written in full before each vmath call reads them; GCC cannot see
// that through the loop bounds and warns (a false positive). Only the activation sources include
// this header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace loom::nn::kernels {

constexpr std::int64_t kBlock = 256;  // elements per block: scratch arrays stay in L1

constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;  // sqrt(2 / pi)
constexpr double kInvSqrt2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;  // 1 / sqrt(2 pi)
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;    // jax.nn.selu's constants
constexpr double kSeluScale = 1.0507009873554804934193349852946;

inline std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// ---- block math: y = f(x) over n <= kBlock elements ------------------------------------

template <typename T>
inline void vexp(const T* in, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    numpy::vmath::exp_f32(in, out, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i]);
  }
}

template <typename T>
inline void vtanh(const T* in, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    numpy::vmath::tanh_f32(in, out, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
  }
}

template <typename T>
inline void vlog(const T* in, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    numpy::vmath::log_f32(in, out, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::log(in[i]);
  }
}

// log1p(u) for u >= 0: log(1 + u) corrected by u / ((1 + u) - 1) (Goldberg), exact near 0.
template <typename T>
inline void vlog1p(const T* u, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    T w[kBlock], l[kBlock];  // out may alias u
    for (std::int64_t i = 0; i < n; ++i) w[i] = T(1) + u[i];
    vlog(w, l, n);
    for (std::int64_t i = 0; i < n; ++i) {
      const T d = w[i] - T(1);
      out[i] = d == T(0) ? u[i] : l[i] * (u[i] / d);
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::log1p(u[i]);
  }
}

// expm1(x): exp(x) - 1 corrected by x / log(exp(x)) (Kahan), exact near 0.
template <typename T>
inline void vexpm1(const T* x, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    T u[kBlock], l[kBlock];
    vexp(x, u, n);
    vlog(u, l, n);
    for (std::int64_t i = 0; i < n; ++i) {
      const T um1 = u[i] - T(1);
      T r = um1 * (x[i] / l[i]);
      r = u[i] == T(1) ? x[i] : r;
      r = um1 == T(-1) ? T(-1) : r;
      r = u[i] == std::numeric_limits<T>::infinity() ? u[i] : r;
      out[i] = x[i] != x[i] ? x[i] : r;
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::expm1(x[i]);
  }
}

// erf: float32 as XLA:CPU computes it (Eigen's rational approximation on x clamped to [-4, 4],
// within 3 ulp; erf(1.4142135f) = 0.9544997f); float64 through the C library.
template <typename T>
void verf(const T* x, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    for (std::int64_t i = 0; i < n; ++i) {
      const float v = x[i] < -4.0f ? -4.0f : (x[i] > 4.0f ? 4.0f : x[i]);
      const float z = v * v;
      float p = -2.72614225801306e-10f;
      p = p * z + 2.77068142495902e-08f;
      p = p * z - 2.10102402082508e-06f;
      p = p * z - 5.69250639462346e-05f;
      p = p * z - 7.34990630326855e-04f;
      p = p * z - 2.95459980854025e-03f;
      p = p * z - 1.60960333262415e-02f;
      float q = -1.45660718464996e-05f;
      q = q * z - 2.13374055278905e-04f;
      q = q * z - 1.68282697438203e-03f;
      q = q * z - 7.37332916720468e-03f;
      q = q * z - 1.42647390514189e-02f;
      const float r = v * p / q;
      out[i] = x[i] != x[i] ? x[i] : r;
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::erf(x[i]);
  }
}

// e = exp(-|x|), the stable ingredient of sigmoid and softplus.
template <typename T>
inline void exp_neg_abs(const T* x, T* e, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) e[i] = x[i] < T(0) ? x[i] : -x[i];
  vexp(e, e, n);
}

template <typename T>
inline void vsigmoid(const T* x, T* y, std::int64_t n) {
  T e[kBlock];
  exp_neg_abs(x, e, n);
  for (std::int64_t i = 0; i < n; ++i) {
    const T r = T(1) / (T(1) + e[i]);
    y[i] = x[i] >= T(0) ? r : e[i] * r;
  }
}

// softplus(x) = max(x, 0) + log1p(exp(-|x|)).
template <typename T>
inline void vsoftplus(const T* x, T* y, std::int64_t n) {
  T e[kBlock];
  exp_neg_abs(x, e, n);
  vlog1p(e, e, n);
  for (std::int64_t i = 0; i < n; ++i) y[i] = (x[i] > T(0) ? x[i] : T(0)) + e[i];
}

// ---- the elementwise driver ---------------------------------------------------------------

// Runs f(begin, len) over [0, n) in blocks of at most kBlock, across threads for large n.
template <typename F>
void blocks(std::int64_t n, F&& f) {
  loom::detail::parallel_for(
      n,
      [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t s = b; s < e; s += kBlock) f(s, std::min(kBlock, e - s));
      },
      1 << 13);
}

// jit's fuser block kernel for a forward kernel that captures nothing (its parameters, if any,
// would need state a function pointer cannot carry): the same fwd, kBlock elements at a time,
// through a scratch block since some fwds write y before their last read of x (silu) and the
// fuser may pass y == x.
template <typename Fwd>
constexpr auto block_kernel() -> void (*)(const float*, float*, std::int64_t) {
  if constexpr (std::is_empty_v<Fwd> && std::is_default_constructible_v<Fwd>) {
    return [](const float* x, float* y, std::int64_t n) {
      float t[kBlock];
      for (std::int64_t s = 0; s < n; s += kBlock) {
        const std::int64_t len = std::min(kBlock, n - s);
        Fwd{}(x + s, t, len);
        std::copy(t, t + len, y + s);
      }
    };
  } else {
    return nullptr;
  }
}

// An elementwise activation computed in x's floating dtype (float32 for integers and bool).
// fwd(x, y, n) writes y; bwd(x, y, g, dx, n) writes dx (x: input, y: output, g: cotangent).
// It binds itself as a primitive: impl(x) is the activation itself (jit replays it, vmap
// batches it elementwise), and composite(x, y, g) computes bwd's dx with differentiable loom
// ops, which the VJP runs instead of bwd when the backward pass is differentiated.
template <typename Fwd, typename Bwd, typename Impl, typename Composite>
Array elementwise(const Array& x0, const char* op, Fwd fwd, Bwd bwd, Impl impl,
                  Composite composite) {
  loom::detail::check_valid(x0, op);
  Array cast;
  if (!is_floating(x0.dtype())) cast = x0.astype(DType::float32);
  const Array& x = cast.valid() ? cast : x0;
  Array out = Array::empty(x.shape(), x.dtype());
  loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    const T* px = x.data<T>();
    T* py = out.mutable_data<T>();
    blocks(x.size(), [&](std::int64_t s, std::int64_t len) { fwd(px + s, py + s, len); });
  });
  if (!loom::detail::transforming()) return out;
  // One instantiation per call site (its lambdas' types), so one name per static.
  static const loom::detail::Primitive prim{.name = op,
                                            .batching = loom::detail::Batching::elementwise,
                                            .vjp_uses_output = true,
                                            .block = {.unary = block_kernel<Fwd>()},
                                            .forward = loom::detail::Forward::symmetric};
  loom::detail::bind(
      prim, out, {&x}, [impl](const std::vector<Array>& in) { return impl(in[0]); },
      [x, bwd, composite, op](const Array& g0, const Array& y) {
        const Array g = g0.dtype() == x.dtype() ? g0 : g0.astype(x.dtype());
        if (loom::detail::use_composite_vjp()) return std::vector<Array>{composite(x, y, g)};
        Array dx = Array::empty(x.shape(), x.dtype());
        loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
          const T* px = x.data<T>();
          const T* py = y.data<T>();
          const T* pg = g.data<T>();
          T* pd = dx.mutable_data<T>();
          blocks(x.size(), [&](std::int64_t s, std::int64_t len) {
            bwd(px + s, py + s, pg + s, pd + s, len);
          });
        });
        return std::vector<Array>{dx};
      });
  return out;
}

}  // namespace loom::nn::kernels
