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
Array add(const Array& a, const Array& b);
Array subtract(const Array& a, const Array& b);
Array multiply(const Array& a, const Array& b);
Array divide(const Array& a, const Array& b);  // true division: integers give float32
Array power(const Array& a, const Array& b);
Array maximum(const Array& a, const Array& b);
Array minimum(const Array& a, const Array& b);

// Unary (differentiable).
Array negative(const Array& x);
Array exp(const Array& x);
Array log(const Array& x);
Array log1p(const Array& x);
Array expm1(const Array& x);
Array sqrt(const Array& x);
Array rsqrt(const Array& x);
Array abs(const Array& x);
Array sign(const Array& x);
Array tanh(const Array& x);
Array sin(const Array& x);
Array cos(const Array& x);
Array square(const Array& x);
Array reciprocal(const Array& x);
Array floor(const Array& x);
Array ceil(const Array& x);

// Comparisons and logic (bool results).
Array equal(const Array& a, const Array& b);
Array not_equal(const Array& a, const Array& b);
Array less(const Array& a, const Array& b);
Array less_equal(const Array& a, const Array& b);
Array greater(const Array& a, const Array& b);
Array greater_equal(const Array& a, const Array& b);
Array logical_and(const Array& a, const Array& b);
Array logical_or(const Array& a, const Array& b);
Array logical_not(const Array& x);
Array isnan(const Array& x);
Array isfinite(const Array& x);

/// Elements of x where cond is true, else of y (broadcast together).
Array where(const Array& cond, const Array& x, const Array& y);
/// min(max(x, lo), hi).
Array clip(const Array& x, double lo, double hi);
Array clip(const Array& x, const Array& lo, const Array& hi);

/// A weakly-typed scalar (JAX's Python scalar): adopts the dtype of the array it meets.
/// Floating `value` with an integer or bool array gives float32.
Array weak_scalar(double value, const Array& like);
Array weak_scalar(int value, const Array& like);

}  // namespace loom::numpy

namespace loom {

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
#define LOOM_SCALAR_OPERATOR(op)                   \
  Array operator op(const Array& a, double b);     \
  Array operator op(double a, const Array& b);     \
  Array operator op(const Array& a, int b);        \
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
