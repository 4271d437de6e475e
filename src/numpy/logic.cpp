// Comparisons, logic and selection: equal ... greater_equal, logical_and/or/not, isnan, isfinite,
// where, clip and weak_scalar; kernels, VJPs and jit block kernels in one place (the shared
// machinery is numpy/elementwise_impl.hpp).
#include <cmath>
#include <string>

#include "loom/numpy/elementwise.hpp"
#include "numpy/elementwise_impl.hpp"

namespace loom::numpy {
using namespace elementwise_impl;  // NOLINT(google-build-using-namespace): shared machinery

namespace {

void where_f32(const bool* c, const float* x, const float* y, float* o, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
}

}  // namespace

// ---- comparisons and logic (bool results, not differentiated) -----------------------------

// Bound with no VJP: jit and vmap see them, autodiff treats their results as constants.
// Comparisons of float32 operands fuse under jit (their block kernel writes bools).
#define LOOM_BOOL_BINARY(fn, kind, expr)                                                 \
  namespace {                                                                            \
  void fn##_f32(const float* a, const float* b, bool* o, std::int64_t n) {               \
    for (std::int64_t i = 0; i < n; ++i) {                                               \
      const float x = a[i], y = b[i];                                                    \
      o[i] = expr;                                                                       \
    }                                                                                    \
  }                                                                                      \
  }                                                                                      \
  Array fn(const Array& a, const Array& b) {                                             \
    Array out = binary(a, b, Kind::kind, #fn, [](auto x, auto y) { return expr; });      \
    static constexpr detail::Primitive kPrim = elementwise_prim(                         \
        #fn, false, {.compare = Kind::kind == Kind::comparison ? fn##_f32 : nullptr});   \
    if (detail::transforming())                                                          \
      detail::bind(                                                                      \
          kPrim, out, {&a, &b}, [](const In& in) { return fn(in[0], in[1]); }, nullptr); \
    return out;                                                                          \
  }
LOOM_BOOL_BINARY(equal, comparison, x == y)
LOOM_BOOL_BINARY(not_equal, comparison, x != y)
LOOM_BOOL_BINARY(less, comparison, x < y)
LOOM_BOOL_BINARY(less_equal, comparison, x <= y)
LOOM_BOOL_BINARY(greater, comparison, x > y)
LOOM_BOOL_BINARY(greater_equal, comparison, x >= y)
LOOM_BOOL_BINARY(logical_and, logical, x&& y)
LOOM_BOOL_BINARY(logical_or, logical, x || y)
#undef LOOM_BOOL_BINARY

Array logical_not(const Array& x) {
  detail::check_valid(x, "logical_not");
  return equal(x.astype(DType::bool_), Array::scalar(false));
}

Array isnan(const Array& x) {
  detail::check_valid(x, "isnan");
  return not_equal(x, x);
}

Array isfinite(const Array& x) {
  detail::check_valid(x, "isfinite");
  if (!is_floating(x.dtype())) return full(x.shape(), 1, DType::bool_);
  Array out = Array::empty(x.shape(), DType::bool_);
  detail::dispatch_float(x.dtype(), "isfinite", [&]<typename T>() {
    const T* in = x.data<T>();
    bool* o = out.mutable_data<bool>();
    for (std::int64_t i = 0, n = x.size(); i < n; ++i) o[i] = std::isfinite(in[i]);
  });
  static constexpr detail::Primitive kIsfinite = elementwise_prim("isfinite");
  if (detail::transforming())
    detail::bind(
        kIsfinite, out, {&x}, [](const In& in) { return isfinite(in[0]); }, nullptr);
  return out;
}

// ---- selection --------------------------------------------------------------------------------

namespace {
// An operand of where() read as a flat array of the output's size: stride 1 when it already has
// the output's shape, stride 0 when it holds one element (the common scalar case, e.g. Dropout's
// zeros), otherwise materialized with broadcast_to.
Array flat_operand(const Array& a, const Shape& shape, std::int64_t& stride) {
  if (a.shape() == shape) {
    stride = 1;
    return a;
  }
  if (a.size() == 1) {
    stride = 0;
    return a;
  }
  stride = 1;
  return broadcast_to(a.detached(), shape);
}

// The cotangent of a `dtype` operand that was promoted to g's dtype: converted back, as the
// VJP of the promotion (astype between floating dtypes) does.
Array cast_back(const Array& g, DType dtype) {
  return is_floating(dtype) && dtype != g.dtype() ? g.astype(dtype) : g;
}
}  // namespace

Array where(const Array& cond0, const Array& x0, const Array& y0) {
  detail::check_valid(cond0, "where");
  const DType t = compute_dtype(x0, y0, Kind::arithmetic, "where");
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond0.shape(), x0.shape(), "where"), y0.shape(), "where");
  const Array c = cond0.astype(DType::bool_);
  const Array x = x0.astype(t), y = y0.astype(t);
  Array out = Array::empty(shape, t);
  std::int64_t sc = 0, sx = 0, sy = 0;
  const Array cf = flat_operand(c, shape, sc), xf = flat_operand(x, shape, sx),
              yf = flat_operand(y, shape, sy);
  detail::dispatch(t, [&]<typename T>() {
    const bool* pc = cf.data<bool>();
    const T* px = xf.data<T>();
    const T* py = yf.data<T>();
    T* po = out.mutable_data<T>();
    detail::parallel_for(out.size(), [&](std::int64_t begin, std::int64_t end) {
      if (sc == 1 && sx == 1 && sy == 1) {
        for (std::int64_t i = begin; i < end; ++i) po[i] = pc[i] ? px[i] : py[i];
      } else {
        for (std::int64_t i = begin; i < end; ++i) po[i] = pc[i * sc] ? px[i * sx] : py[i * sy];
      }
    });
  });
  static constexpr detail::Primitive kWhere = elementwise_prim(
      "where", false, {.select = where_f32}, kDerived,
      [](const In& x, const Array&, const In& t) { return where(x[0], t[1], t[2]); });
  if (detail::transforming())
    detail::bind(
        kWhere, out, {&cond0, &x0, &y0}, [](const In& in) { return where(in[0], in[1], in[2]); },
        [c, sx = x0.shape(), sy = y0.shape(), tx = x0.dtype(), ty = y0.dtype()](const Array& g,
                                                                                const Array&) {
          const Array z = zeros(Shape{}, g.dtype());
          return std::vector<Array>{Array(), cast_back(unbroadcast(where(c, g, z), sx), tx),
                                    cast_back(unbroadcast(where(c, z, g), sy), ty)};
        });
  return out;
}

Array clip(const Array& x, double lo, double hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}

Array clip(const Array& x, const Array& lo, const Array& hi) {
  return minimum(maximum(x, lo), hi);
}

Array weak_scalar(double value, const Array& like) {
  detail::check_valid(like, "weak_scalar");
  const DType t = is_floating(like.dtype()) ? like.dtype() : DType::float32;
  return full(Shape{}, value, t);
}

Array weak_scalar(int value, const Array& like) {
  detail::check_valid(like, "weak_scalar");
  const DType t = like.dtype() == DType::bool_ ? DType::int32 : like.dtype();
  if (t == DType::uint32 && value < 0) {
    throw Error("weak_scalar: the negative scalar " + std::to_string(value) +
                " cannot combine with a uint32 array without wrapping");
  }
  return full(Shape{}, value, t);
}

// ---- C++ scalars on either side (weakly typed) ----------------------------------------------

LOOM_SCALAR_BINARY(equal)
LOOM_SCALAR_BINARY(not_equal)
LOOM_SCALAR_BINARY(less)
LOOM_SCALAR_BINARY(less_equal)
LOOM_SCALAR_BINARY(greater)
LOOM_SCALAR_BINARY(greater_equal)
LOOM_SCALAR_BINARY(logical_and)
LOOM_SCALAR_BINARY(logical_or)
#undef LOOM_SCALAR_BINARY

Array where(const Array& cond, const Array& x, double y) {
  return where(cond, x, weak_scalar(y, x));
}
Array where(const Array& cond, double x, const Array& y) {
  return where(cond, weak_scalar(x, y), y);
}
Array where(const Array& cond, const Array& x, int y) {
  return where(cond, x, weak_scalar(y, x));
}
Array where(const Array& cond, int x, const Array& y) {
  return where(cond, weak_scalar(x, y), y);
}
Array where(const Array& cond, double x, double y) {
  return where(cond, full(Shape{}, x, DType::float32), full(Shape{}, y, DType::float32));
}
Array where(const Array& cond, int x, int y) {
  return where(cond, full(Shape{}, x, DType::int32), full(Shape{}, y, DType::int32));
}

Array where(const Array& cond, int x, double y) {
  return where(cond, double(x), y);
}
Array where(const Array& cond, double x, int y) {
  return where(cond, x, double(y));
}

Array clip(const Array& x, int lo, int hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}
Array clip(const Array& x, int lo, double hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}
Array clip(const Array& x, double lo, int hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}

}  // namespace loom::numpy
