// Elementwise operations with NumPy broadcasting and loom's promotion table (loom/dtype.hpp).
//
//   auto y = jnp::exp(x) * 2.0 + b;        // operators live in namespace loom
//   auto m = jnp::where(x > 0.0, x, 0.0 * x);
//   auto c = jnp::clip(x, -1.0, 1.0);
//
// Transcendental functions of integer inputs compute in float32, as JAX does. float32 exp, log
// and tanh use loom's vectorized kernels (within 2 ulp of the correctly rounded value, as XLA's
// own polynomial approximations are); float64 and the other functions use the C library.
// Comparisons and logical ops return bool arrays and are not differentiated.
#pragma once

#include "loom/array.hpp"

namespace loom::numpy {

// Binary arithmetic (differentiable).
/// a + b.                                   jnp::add(x, y)
Array add(const Array& a, const Array& b);
/// a - b.                                   jnp::subtract(x, y)
Array subtract(const Array& a, const Array& b);
/// a * b.                                   jnp::multiply(x, w)
Array multiply(const Array& a, const Array& b);
/// a / b; integer inputs give float32.      jnp::divide(x, 2.0 * ones)
Array divide(const Array& a, const Array& b);  // true division: integers give float32
/// a ** b (integers: exact, with wrapping). jnp::power(x, jnp::full({1}, 2.0))
Array power(const Array& a, const Array& b);
/// Elementwise max; NaN propagates. Ties split the gradient evenly, as JAX.  jnp::maximum(x, y)
Array maximum(const Array& a, const Array& b);
/// Elementwise min; NaN propagates.         jnp::minimum(x, y)
Array minimum(const Array& a, const Array& b);

// Unary (differentiable).
/// -x (integers wrap; bool is an error).    jnp::negative(x)
Array negative(const Array& x);
/// e^x.                                     jnp::exp(x)
Array exp(const Array& x);
/// Natural log (nan below 0, -inf at 0).    jnp::log(x)
Array log(const Array& x);
/// log(1 + x), accurate near 0.             jnp::log1p(x)
Array log1p(const Array& x);
/// e^x - 1, accurate near 0.                jnp::expm1(x)
Array expm1(const Array& x);
/// Square root.                             jnp::sqrt(x)
Array sqrt(const Array& x);
/// 1 / sqrt(x) (lax.rsqrt).                 jnp::rsqrt(x)
Array rsqrt(const Array& x);
/// |x|; its gradient at 0 is 1, as JAX.     jnp::abs(x)
Array abs(const Array& x);
/// -1, 0 or 1 (nan stays nan); zero gradient.  jnp::sign(x)
Array sign(const Array& x);
/// Hyperbolic tangent.                      jnp::tanh(x)
Array tanh(const Array& x);
/// Sine (radians).                          jnp::sin(x)
Array sin(const Array& x);
/// Cosine (radians).                        jnp::cos(x)
Array cos(const Array& x);
/// x * x.                                   jnp::square(x)
Array square(const Array& x);
/// 1 / x.                                   jnp::reciprocal(x)
Array reciprocal(const Array& x);
/// Round down (integers unchanged); zero gradient.  jnp::floor(x)
Array floor(const Array& x);
/// Round up (integers unchanged); zero gradient.    jnp::ceil(x)
Array ceil(const Array& x);

// Comparisons and logic (bool results).
/// a == b as bool.                          jnp::equal(x, y) or x == y
Array equal(const Array& a, const Array& b);
/// a != b as bool.                          x != y
Array not_equal(const Array& a, const Array& b);
/// a < b as bool.                           x < y
Array less(const Array& a, const Array& b);
/// a <= b as bool.                          x <= y
Array less_equal(const Array& a, const Array& b);
/// a > b as bool.                           x > 0.0
Array greater(const Array& a, const Array& b);
/// a >= b as bool.                          x >= y
Array greater_equal(const Array& a, const Array& b);
/// Truthiness AND (inputs cast to bool).    jnp::logical_and(m1, m2) or m1 && m2
Array logical_and(const Array& a, const Array& b);
/// Truthiness OR.                           m1 || m2
Array logical_or(const Array& a, const Array& b);
/// Truthiness NOT.                          !mask
Array logical_not(const Array& x);
/// True where x is NaN.                     jnp::isnan(x)
Array isnan(const Array& x);
/// True where x is neither inf nor NaN.     jnp::isfinite(x)
Array isfinite(const Array& x);

/// Elements of x where cond is true, else of y (broadcast together).
///   jnp::where(x > 0.0, x, jnp::zeros_like(x))
Array where(const Array& cond, const Array& x, const Array& y);
/// min(max(x, lo), hi).                    jnp::clip(x, -1.0, 1.0)
Array clip(const Array& x, double lo, double hi);
Array clip(const Array& x, const Array& lo, const Array& hi);

/// C++ scalars on either side of a binary function, weakly typed as Python scalars are in
/// jax.numpy (numpy::weak_scalar): jnp::maximum(x, 0.0) keeps x's float dtype, jnp::power(x, 2)
/// keeps int32, jnp::where(c, x, 0.0) selects against zero in x's dtype.
///   auto y = jnp::maximum(x, 0.0);  auto z = jnp::where(x > 0, x, 0);  jnp::clip(i32, 0, 6)
#define LOOM_SCALAR_BINARY(fn)        \
  Array fn(const Array& a, double b); \
  Array fn(double a, const Array& b); \
  Array fn(const Array& a, int b);    \
  Array fn(int a, const Array& b);
LOOM_SCALAR_BINARY(add)
LOOM_SCALAR_BINARY(subtract)
LOOM_SCALAR_BINARY(multiply)
LOOM_SCALAR_BINARY(divide)
LOOM_SCALAR_BINARY(power)
LOOM_SCALAR_BINARY(maximum)
LOOM_SCALAR_BINARY(minimum)
LOOM_SCALAR_BINARY(equal)
LOOM_SCALAR_BINARY(not_equal)
LOOM_SCALAR_BINARY(less)
LOOM_SCALAR_BINARY(less_equal)
LOOM_SCALAR_BINARY(greater)
LOOM_SCALAR_BINARY(greater_equal)
LOOM_SCALAR_BINARY(logical_and)
LOOM_SCALAR_BINARY(logical_or)
#undef LOOM_SCALAR_BINARY
Array where(const Array& cond, const Array& x, double y);
Array where(const Array& cond, double x, const Array& y);
Array where(const Array& cond, const Array& x, int y);
Array where(const Array& cond, int x, const Array& y);
/// Both branches scalars: float32 for doubles, int32 for ints (JAX's weak defaults).
Array where(const Array& cond, double x, double y);
Array where(const Array& cond, int x, int y);
/// Integer bounds keep integer arrays integer (clip(x, 0.0, 6.0) would give float32).
Array clip(const Array& x, int lo, int hi);

/// A weakly-typed scalar (JAX's Python scalar): adopts the dtype of the array it meets.
/// Floating `value` with an integer or bool array gives float32.
///   jnp::weak_scalar(2.0, x)   // what `x * 2.0` multiplies by
Array weak_scalar(double value, const Array& like);
Array weak_scalar(int value, const Array& like);

}  // namespace loom::numpy

namespace loom {

// Operators: the functions above (x + y is numpy::add, x && y is logical_and, ...).
//   loom::Array y = (x - mean) / std * 2.0 + 1;
Array operator+(const Array& a, const Array& b);
Array operator-(const Array& a, const Array& b);
Array operator*(const Array& a, const Array& b);
Array operator/(const Array& a, const Array& b);
Array operator-(const Array& x);
Array operator==(const Array& a, const Array& b);
Array operator!=(const Array& a, const Array& b);
Array operator<(const Array& a, const Array& b);
Array operator<=(const Array& a, const Array& b);
Array operator>(const Array& a, const Array& b);
Array operator>=(const Array& a, const Array& b);
Array operator&&(const Array& a, const Array& b);
Array operator||(const Array& a, const Array& b);
Array operator!(const Array& x);

// Scalars on either side are weakly typed (see numpy::weak_scalar).
#define LOOM_SCALAR_OPERATOR(op)               \
  Array operator op(const Array& a, double b); \
  Array operator op(double a, const Array& b); \
  Array operator op(const Array& a, int b);    \
  Array operator op(int a, const Array& b);
LOOM_SCALAR_OPERATOR(+)
LOOM_SCALAR_OPERATOR(-)
LOOM_SCALAR_OPERATOR(*)
LOOM_SCALAR_OPERATOR(/)
LOOM_SCALAR_OPERATOR(==)
LOOM_SCALAR_OPERATOR(!=)
LOOM_SCALAR_OPERATOR(<)
LOOM_SCALAR_OPERATOR(<=)
LOOM_SCALAR_OPERATOR(>)
LOOM_SCALAR_OPERATOR(>=)
#undef LOOM_SCALAR_OPERATOR

}  // namespace loom
