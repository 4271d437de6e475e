// Elementwise math functions: negative, exp, log, log1p, expm1, sqrt, rsqrt, abs, sign, tanh,
// sin, cos, square, reciprocal, floor, ceil; each op's kernel, VJP and jit block kernel in one
// place (the shared machinery is numpy/elementwise_impl.hpp).
#include <cmath>
#include <limits>
#include <type_traits>

#include "loom/numpy/elementwise.hpp"
#include "numpy/elementwise_impl.hpp"

namespace loom::numpy {
using namespace elementwise_impl;  // NOLINT(google-build-using-namespace): shared machinery

namespace {

// jit block kernels: the expression each op's eager kernel computes on float32.
#define LOOM_BLOCK_UNARY(fn, expr)                    \
  void fn(const float* a, float* o, std::int64_t n) { \
    for (std::int64_t i = 0; i < n; ++i) {            \
      const float v = a[i];                           \
      o[i] = expr;                                    \
    }                                                 \
  }
LOOM_BLOCK_UNARY(negative_f32, -v)
LOOM_BLOCK_UNARY(log1p_f32, std::log1p(v))
LOOM_BLOCK_UNARY(expm1_f32, std::expm1(v))
LOOM_BLOCK_UNARY(sqrt_f32, std::sqrt(v))
LOOM_BLOCK_UNARY(rsqrt_f32, 1.0f / std::sqrt(v))
LOOM_BLOCK_UNARY(abs_f32, std::abs(v))
LOOM_BLOCK_UNARY(sin_f32, std::sin(v))
LOOM_BLOCK_UNARY(cos_f32, std::cos(v))
LOOM_BLOCK_UNARY(floor_f32, std::floor(v))
LOOM_BLOCK_UNARY(ceil_f32, std::ceil(v))
#undef LOOM_BLOCK_UNARY

}  // namespace

// ---- unary --------------------------------------------------------------------------------

Array negative(const Array& x) {
  Array out = unary_same(x, "negative", [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T>)
      return static_cast<T>(0u - v);  // wraps, as NumPy
    else if constexpr (std::is_integral_v<T>) {
      return v == std::numeric_limits<T>::min() ? v : static_cast<T>(-v);  // no overflow UB
    } else
      return -v;
  });
  static constexpr detail::Primitive kNegative =
      elementwise_prim("negative", false, {.unary = negative_f32}, kLinear);
  if (detail::transforming())
    detail::bind(
        kNegative, out, {&x}, [](const In& in) { return negative(in[0]); },
        [](const Array& g, const Array&) { return one(negative(g)); });
  return out;
}

Array exp(const Array& x) {
  Array out = unary_float(
      x, "exp", [](auto v) { return std::exp(v); }, vmath::exp_f32);
  static constexpr detail::Primitive kExp =
      elementwise_prim("exp", true, {.unary = vmath::exp_f32}, kDerived,
                       [](const In&, const Array& y, const In& t) { return multiply(t[0], y); });
  if (detail::transforming())
    detail::bind(
        kExp, out, {&x}, [](const In& in) { return exp(in[0]); },
        [](const Array& g, const Array& y) { return one(multiply(g, y)); });
  return out;
}

Array log(const Array& x) {
  Array out = unary_float(
      x, "log", [](auto v) { return std::log(v); }, vmath::log_f32);
  static constexpr detail::Primitive kLog =
      elementwise_prim("log", false, {.unary = vmath::log_f32}, kDerived,
                       [](const In& x, const Array&, const In& t) { return divide(t[0], x[0]); });
  if (detail::transforming())
    detail::bind(
        kLog, out, {&x}, [](const In& in) { return log(in[0]); },
        [x](const Array& g, const Array&) { return one(divide(g, x)); });
  return out;
}

Array log1p(const Array& x) {
  Array out = unary_float(x, "log1p", [](auto v) { return std::log1p(v); });
  static constexpr detail::Primitive kLog1p = elementwise_prim(
      "log1p", false, {.unary = log1p_f32}, kDerived,
      [](const In& x, const Array&, const In& t) { return divide(t[0], x[0] + 1.0); });
  if (detail::transforming())
    detail::bind(
        kLog1p, out, {&x}, [](const In& in) { return log1p(in[0]); },
        [x](const Array& g, const Array&) { return one(divide(g, x + 1.0)); });
  return out;
}

Array expm1(const Array& x) {
  Array out = unary_float(x, "expm1", [](auto v) { return std::expm1(v); });
  static constexpr detail::Primitive kExpm1 = elementwise_prim(
      "expm1", true, {.unary = expm1_f32}, kDerived,
      [](const In&, const Array& y, const In& t) { return multiply(t[0], y + 1.0); });
  if (detail::transforming())
    detail::bind(
        kExpm1, out, {&x}, [](const In& in) { return expm1(in[0]); },
        [](const Array& g, const Array& o) { return one(multiply(g, o + 1.0)); });
  return out;
}

Array sqrt(const Array& x) {
  Array out = unary_float(x, "sqrt", [](auto v) { return std::sqrt(v); });
  static constexpr detail::Primitive kSqrt = elementwise_prim(
      "sqrt", true, {.unary = sqrt_f32}, kDerived,
      [](const In&, const Array& y, const In& t) { return divide(t[0] * 0.5, y); });
  if (detail::transforming())
    detail::bind(
        kSqrt, out, {&x}, [](const In& in) { return sqrt(in[0]); },
        [](const Array& g, const Array& o) { return one(divide(g * 0.5, o)); });
  return out;
}

Array rsqrt(const Array& x) {
  Array out = unary_float(x, "rsqrt", [](auto v) {
    using T = decltype(v);
    return T(1) / std::sqrt(v);
  });
  static constexpr detail::Primitive kRsqrt = elementwise_prim(
      "rsqrt", true, {.unary = rsqrt_f32}, kDerived, [](const In& x, const Array& y, const In& t) {
        return multiply(t[0], divide(y, x[0]) * -0.5);
      });
  if (detail::transforming())
    detail::bind(
        kRsqrt, out, {&x}, [](const In& in) { return rsqrt(in[0]); },
        [x](const Array& g, const Array& o) { return one(multiply(g, divide(o, x) * -0.5)); });
  return out;
}

Array abs(const Array& x) {
  Array out = unary_same(x, "abs", [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>)
      return v;
    else if constexpr (std::is_integral_v<T>) {
      return v == std::numeric_limits<T>::min() ? v : static_cast<T>(v < 0 ? -v : v);
    } else
      return std::abs(v);
  });
  // JAX's abs JVP: select(x >= 0, g, -g), so grad(abs)(0) == 1.
  static constexpr detail::Primitive kAbs = elementwise_prim(
      "abs", false, {.unary = abs_f32}, kDerived, [](const In& x, const Array&, const In& t) {
        return where(greater_equal(x[0], zeros_like(x[0])), t[0], negative(t[0]));
      });
  if (detail::transforming())
    detail::bind(
        kAbs, out, {&x}, [](const In& in) { return abs(in[0]); },
        [x](const Array& g, const Array&) {
          return one(where(greater_equal(x, zeros_like(x)), g, negative(g)));
        });
  return out;
}

Array sign(const Array& x) {
  Array out = unary_same(x, "sign", [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_floating_point_v<T>) {
      if (v != v) return v;
    }
    return static_cast<T>((T(0) < v) - (v < T(0)));
  });
  // No VJP: its derivative is zero almost everywhere (JAX gives zeros).
  static constexpr detail::Primitive kSign = elementwise_prim("sign");
  if (detail::transforming())
    detail::bind(
        kSign, out, {&x}, [](const In& in) { return sign(in[0]); }, nullptr);
  return out;
}

Array tanh(const Array& x) {
  Array out = unary_float(
      x, "tanh", [](auto v) { return std::tanh(v); }, vmath::tanh_f32);
  static constexpr detail::Primitive kTanh = elementwise_prim(
      "tanh", true, {.unary = vmath::tanh_f32}, kDerived,
      [](const In&, const Array& y, const In& t) { return multiply(t[0], 1.0 - multiply(y, y)); });
  if (detail::transforming())
    detail::bind(
        kTanh, out, {&x}, [](const In& in) { return tanh(in[0]); },
        [](const Array& g, const Array& o) { return one(multiply(g, 1.0 - multiply(o, o))); });
  return out;
}

Array sin(const Array& x) {
  Array out = unary_float(x, "sin", [](auto v) { return std::sin(v); });
  static constexpr detail::Primitive kSin = elementwise_prim(
      "sin", false, {.unary = sin_f32}, kDerived,
      [](const In& x, const Array&, const In& t) { return multiply(t[0], cos(x[0])); });
  if (detail::transforming())
    detail::bind(
        kSin, out, {&x}, [](const In& in) { return sin(in[0]); },
        [x](const Array& g, const Array&) { return one(multiply(g, cos(x))); });
  return out;
}

Array cos(const Array& x) {
  Array out = unary_float(x, "cos", [](auto v) { return std::cos(v); });
  static constexpr detail::Primitive kCos = elementwise_prim(
      "cos", false, {.unary = cos_f32}, kDerived,
      [](const In& x, const Array&, const In& t) { return negative(multiply(t[0], sin(x[0]))); });
  if (detail::transforming())
    detail::bind(
        kCos, out, {&x}, [](const In& in) { return cos(in[0]); },
        [x](const Array& g, const Array&) { return one(negative(multiply(g, sin(x)))); });
  return out;
}

Array square(const Array& x) {
  return multiply(x, x);
}

Array reciprocal(const Array& x) {
  detail::check_valid(x, "reciprocal");
  return divide(weak_scalar(1.0, x), x);
}

Array floor(const Array& x) {
  detail::check_valid(x, "floor");
  if (!is_floating(x.dtype())) return x;
  Array out = unary_float(x, "floor", [](auto v) { return std::floor(v); });
  static constexpr detail::Primitive kFloor =
      elementwise_prim("floor", false, {.unary = floor_f32});  // zero gradient
  if (detail::transforming())
    detail::bind(
        kFloor, out, {&x}, [](const In& in) { return floor(in[0]); }, nullptr);
  return out;
}

Array ceil(const Array& x) {
  detail::check_valid(x, "ceil");
  if (!is_floating(x.dtype())) return x;
  Array out = unary_float(x, "ceil", [](auto v) { return std::ceil(v); });
  static constexpr detail::Primitive kCeil =
      elementwise_prim("ceil", false, {.unary = ceil_f32});  // zero gradient
  if (detail::transforming())
    detail::bind(
        kCeil, out, {&x}, [](const In& in) { return ceil(in[0]); }, nullptr);
  return out;
}

}  // namespace loom::numpy
