// Elementwise arithmetic: add, subtract, multiply, divide, power, maximum, minimum, their
// C++-scalar overloads and Array's operators; each op's kernel, VJP and jit block kernel in one
// place (the shared broadcasting machinery is numpy/elementwise_impl.hpp).
#include "loom/numpy/elementwise.hpp"

#include "numpy/elementwise_impl.hpp"

namespace loom::numpy {
using namespace elementwise_impl;  // NOLINT(google-build-using-namespace): shared machinery

namespace {

// ---- jit's float32 block kernels (detail::BlockKernel) ------------------------------------
// Each computes the expression its op's eager kernel computes on float32 (run_binary's
// functor, unary_float's fn or vmath kernel, where's select), so a fused replay rounds as
// eager execution does.
#define LOOM_BLOCK_BINARY(fn, expr)                                   \
  void fn(const float* a, const float* b, float* o, std::int64_t n) { \
    for (std::int64_t i = 0; i < n; ++i) {                            \
      const float x = a[i], y = b[i];                                 \
      o[i] = expr;                                                    \
    }                                                                 \
  }
LOOM_BLOCK_BINARY(add_f32, x + y)
LOOM_BLOCK_BINARY(subtract_f32, x - y)
LOOM_BLOCK_BINARY(multiply_f32, x* y)
LOOM_BLOCK_BINARY(divide_f32, x / y)
LOOM_BLOCK_BINARY(maximum_f32, nan_max(x, y))
LOOM_BLOCK_BINARY(minimum_f32, nan_min(x, y))
#undef LOOM_BLOCK_BINARY

// ---- forward-mode rules (detail::JvpRule): the JVPs of JAX's lax.div_p, pow_p, max_p --------

// d(a / b) = (ta - tb a / b) / b = (ta - tb y) / b.
Array divide_jvp(const In& x, const Array& y, const In& t) {
  return divide(subtract(t[0], multiply(t[1], y)), x[1]);
}

// d(a^b) = ta b a^(b-1) + tb log(a) a^b, with the VJP's conventions: the base's derivative is 0
// where b == 0, log(a) is taken as 0 where a == 0.
Array power_jvp(const In& x, const Array& y, const In& t) {
  const Array &a = x[0], &b = x[1];
  Array da = where(equal(b, zeros_like(b)), zeros_like(b), multiply(b, power(a, b - 1.0)));
  Array safe_log = log(where(equal(a, zeros_like(a)), ones_like(a), a));
  return add(multiply(t[0], da), multiply(t[1], multiply(safe_log, y)));
}

// The tangent of the selected operand; ties average both (the VJP's even split).
Array select_jvp(const In& x, const In& t, bool is_max) {
  const Array &a = x[0], &b = x[1];
  Array a_wins = is_max ? greater(a, b) : less(a, b);
  Array wa = add(a_wins.astype(t[0].dtype()), equal(a, b).astype(t[0].dtype()) * 0.5);
  return add(multiply(t[0], wa), multiply(t[1], 1.0 - wa));
}
Array maximum_jvp(const In& x, const Array&, const In& t) {
  return select_jvp(x, t, true);
}
Array minimum_jvp(const In& x, const Array&, const In& t) {
  return select_jvp(x, t, false);
}

}  // namespace

// ---- binary arithmetic ------------------------------------------------------------------------

Array add(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "add", [](auto x, auto y) {
    return wrapping(x, y, [](auto u, auto v) { return u + v; });
  });
  static constexpr detail::Primitive kAdd =
      elementwise_prim("add", false, {.binary = add_f32}, kLinear);
  if (detail::transforming())
    detail::bind(
        kAdd, out, {&a, &b}, [](const In& in) { return add(in[0], in[1]); },
        [sa = a.shape(), sb = b.shape()](const Array& g, const Array&) {
          return std::vector<Array>{unbroadcast(g, sa), unbroadcast(g, sb)};
        });
  return out;
}

Array subtract(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "subtract", [](auto x, auto y) {
    return wrapping(x, y, [](auto u, auto v) { return u - v; });
  });
  static constexpr detail::Primitive kSubtract =
      elementwise_prim("subtract", false, {.binary = subtract_f32}, kLinear);
  if (detail::transforming())
    detail::bind(
        kSubtract, out, {&a, &b}, [](const In& in) { return subtract(in[0], in[1]); },
        [sa = a.shape(), sb = b.shape()](const Array& g, const Array&) {
          return std::vector<Array>{unbroadcast(g, sa), unbroadcast(negative(g), sb)};
        });
  return out;
}

Array multiply(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "multiply", [](auto x, auto y) {
    return wrapping(x, y, [](auto u, auto v) { return u * v; });
  });
  static constexpr detail::Primitive kMultiply =
      elementwise_prim("multiply", false, {.binary = multiply_f32}, kBilinear);
  if (detail::transforming())
    detail::bind(
        kMultiply, out, {&a, &b}, [](const In& in) { return multiply(in[0], in[1]); },
        [a, b](const Array& g, const Array&) {
          return std::vector<Array>{unbroadcast(multiply(g, b), a.shape()),
                                    unbroadcast(multiply(g, a), b.shape())};
        });
  return out;
}

Array divide(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::true_divide, "divide", [](auto x, auto y) { return x / y; });
  static constexpr detail::Primitive kDivide =
      elementwise_prim("divide", false, {.binary = divide_f32}, kDerived, divide_jvp);
  if (detail::transforming())
    detail::bind(
        kDivide, out, {&a, &b}, [](const In& in) { return divide(in[0], in[1]); },
        [a, b](const Array& g, const Array&) {
          Array ga = divide(g, b);
          return std::vector<Array>{unbroadcast(ga, a.shape()),
                                    unbroadcast(negative(multiply(ga, divide(a, b))), b.shape())};
        });
  return out;
}

Array power(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "power", [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_floating_point_v<T>)
      return std::pow(x, y);
    else if constexpr (std::is_same_v<T, bool>)
      return x || !y;
    else
      return int_power(x, y);
  });
  static constexpr detail::Primitive kPower =
      elementwise_prim("power", /*uses_output=*/true, {}, kDerived, power_jvp);
  if (detail::transforming())
    detail::bind(
        kPower, out, {&a, &b}, [](const In& in) { return power(in[0], in[1]); },
        [a, b](const Array& g, const Array& o) {
          // d/da a^b = b a^(b-1); d/db a^b = log(a) a^b, with log(a) taken as 0 where a == 0
          // (as JAX). JAX's pow JVP: the base's derivative is 0 where the exponent is 0 (even at
          // a == 0).
          Array da = where(equal(b, zeros_like(b)), zeros_like(b), multiply(b, power(a, b - 1.0)));
          Array safe_log = log(where(equal(a, zeros_like(a)), ones_like(a), a));
          Array db = multiply(safe_log, o);
          return std::vector<Array>{unbroadcast(multiply(g, da), a.shape()),
                                    unbroadcast(multiply(g, db), b.shape())};
        });
  return out;
}

namespace {
// VJP of maximum/minimum: the cotangent goes to the selected operand; ties split it evenly, as
// JAX's balanced_eq does.
std::vector<Array> select_vjp(const Array& g, const Array& a, const Array& b, bool is_max) {
  Array a_wins = is_max ? greater(a, b) : less(a, b);
  Array tie = equal(a, b);
  Array wa = add(a_wins.astype(g.dtype()), tie.astype(g.dtype()) * 0.5);
  Array wb = 1.0 - wa;
  return {unbroadcast(multiply(g, wa), a.shape()), unbroadcast(multiply(g, wb), b.shape())};
}
}  // namespace

Array maximum(const Array& a, const Array& b) {
  Array out =
      binary(a, b, Kind::arithmetic, "maximum", [](auto x, auto y) { return nan_max(x, y); });
  static constexpr detail::Primitive kMaximum =
      elementwise_prim("maximum", false, {.binary = maximum_f32}, kDerived, maximum_jvp);
  if (detail::transforming())
    detail::bind(
        kMaximum, out, {&a, &b}, [](const In& in) { return maximum(in[0], in[1]); },
        [a, b](const Array& g, const Array&) { return select_vjp(g, a, b, true); });
  return out;
}

Array minimum(const Array& a, const Array& b) {
  Array out =
      binary(a, b, Kind::arithmetic, "minimum", [](auto x, auto y) { return nan_min(x, y); });
  static constexpr detail::Primitive kMinimum =
      elementwise_prim("minimum", false, {.binary = minimum_f32}, kDerived, minimum_jvp);
  if (detail::transforming())
    detail::bind(
        kMinimum, out, {&a, &b}, [](const In& in) { return minimum(in[0], in[1]); },
        [a, b](const Array& g, const Array&) { return select_vjp(g, a, b, false); });
  return out;
}

// ---- C++ scalars on either side (weakly typed) ----------------------------------------------

LOOM_SCALAR_BINARY(add)
LOOM_SCALAR_BINARY(subtract)
LOOM_SCALAR_BINARY(multiply)
LOOM_SCALAR_BINARY(divide)
LOOM_SCALAR_BINARY(power)
LOOM_SCALAR_BINARY(maximum)
LOOM_SCALAR_BINARY(minimum)
#undef LOOM_SCALAR_BINARY

}  // namespace loom::numpy

// ---- operators --------------------------------------------------------------------------------

namespace loom {
namespace jnp = numpy;

Array operator+(const Array& a, const Array& b) {
  return jnp::add(a, b);
}
Array operator-(const Array& a, const Array& b) {
  return jnp::subtract(a, b);
}
Array operator*(const Array& a, const Array& b) {
  return jnp::multiply(a, b);
}
Array operator/(const Array& a, const Array& b) {
  return jnp::divide(a, b);
}
Array operator-(const Array& x) {
  return jnp::negative(x);
}
Array operator==(const Array& a, const Array& b) {
  return jnp::equal(a, b);
}
Array operator!=(const Array& a, const Array& b) {
  return jnp::not_equal(a, b);
}
Array operator<(const Array& a, const Array& b) {
  return jnp::less(a, b);
}
Array operator<=(const Array& a, const Array& b) {
  return jnp::less_equal(a, b);
}
Array operator>(const Array& a, const Array& b) {
  return jnp::greater(a, b);
}
Array operator>=(const Array& a, const Array& b) {
  return jnp::greater_equal(a, b);
}
Array operator&&(const Array& a, const Array& b) {
  return jnp::logical_and(a, b);
}
Array operator||(const Array& a, const Array& b) {
  return jnp::logical_or(a, b);
}
Array operator!(const Array& x) {
  return jnp::logical_not(x);
}

// The scalar overloads of the jnp functions (above) already wrap the scalar weakly.
#define LOOM_SCALAR_OPERATOR(op, fn)            \
  Array operator op(const Array& a, double b) { \
    return jnp::fn(a, b);                       \
  }                                             \
  Array operator op(double a, const Array& b) { \
    return jnp::fn(a, b);                       \
  }                                             \
  Array operator op(const Array& a, int b) {    \
    return jnp::fn(a, b);                       \
  }                                             \
  Array operator op(int a, const Array& b) {    \
    return jnp::fn(a, b);                       \
  }
LOOM_SCALAR_OPERATOR(+, add)
LOOM_SCALAR_OPERATOR(-, subtract)
LOOM_SCALAR_OPERATOR(*, multiply)
LOOM_SCALAR_OPERATOR(/, divide)
LOOM_SCALAR_OPERATOR(==, equal)
LOOM_SCALAR_OPERATOR(!=, not_equal)
LOOM_SCALAR_OPERATOR(<, less)
LOOM_SCALAR_OPERATOR(<=, less_equal)
LOOM_SCALAR_OPERATOR(>, greater)
LOOM_SCALAR_OPERATOR(>=, greater_equal)
#undef LOOM_SCALAR_OPERATOR

}  // namespace loom
