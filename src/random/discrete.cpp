// The discrete samplers of loom::random: bernoulli, randint, categorical. Facts (not code) from
// jax/_src/random.py; each follows JAX's construction bit for bit (see random.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "detail/dispatch.hpp"
#include "detail/host_read.hpp"
#include "loom/random.hpp"
#include "random/random_internal.hpp"

namespace loom::random {
namespace detail {
namespace {

// Index of `to`-shaped element i in an array of shape `from` broadcast to `to` (numpy rules).
std::vector<std::int64_t> broadcast_map(const Shape& from, const Shape& to) {
  const int off = to.size() - from.size();
  std::vector<std::int64_t> stride(static_cast<std::size_t>(to.size()), 0);
  std::int64_t s = 1;
  for (int d = from.size() - 1; d >= 0; --d) {
    stride[static_cast<std::size_t>(d + off)] = from[d] == 1 ? 0 : s;
    s *= from[d];
  }
  const std::int64_t n = to.numel();
  std::vector<std::int64_t> map(static_cast<std::size_t>(n), 0);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(to.size()), 0);
  std::int64_t cur = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    map[static_cast<std::size_t>(i)] = cur;
    for (int d = to.size() - 1; d >= 0; --d) {
      auto& k = idx[static_cast<std::size_t>(d)];
      cur += stride[static_cast<std::size_t>(d)];
      if (++k < to[d]) break;
      cur -= stride[static_cast<std::size_t>(d)] * k;
      k = 0;
    }
  }
  return map;
}

// True when `from` broadcasts to exactly `to` (JAX's _check_shape).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const int off = to.size() - from.size();
  for (int d = 0; d < from.size(); ++d) {
    if (from[d] != 1 && from[d] != to[d + off]) return false;
  }
  return true;
}

Shape shape_of_batch(const Shape& shape, int skip) {
  Shape out;
  for (int d = 0; d < shape.size(); ++d)
    if (d != skip) out.push_back(shape[d]);
  return out;
}

void check_probability(double p, const char* op) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw Error(op_name(op) + ": p must be in [0, 1], got " + std::to_string(p));
  }
}

}  // namespace
}  // namespace detail

Array bernoulli(const Key& key, double p, std::optional<Shape> shape) {
  detail::check_probability(p, "bernoulli");
  const Shape s = shape.value_or(Shape{});
  // JAX samples in p's dtype: a Python float is float32 with 64-bit types off.
  const Array u = detail::uniform_scaled(key, s, DType::float32, 0.0, 1.0, 1.0, "bernoulli");
  const float pf = static_cast<float>(p);
  Array out = Array::empty(s, DType::bool_);
  bool* o = out.mutable_data<bool>();
  const float* ud = u.data<float>();
  for (std::int64_t i = 0; i < u.size(); ++i) o[i] = ud[i] < pf;
  static constexpr loom::detail::Primitive kBernoulli{.name = "random_bernoulli"};
  detail::bind_random(kBernoulli, out, {&key.data()},
                      [p, shape](const detail::In& in) { return bernoulli(Key(in[0]), p, shape); });
  return out;
}

Array bernoulli(const Key& key, const Array& p, std::optional<Shape> shape) {
  if (!p.valid()) throw Error("random.bernoulli: p is an empty array");
  if (!is_floating(p.dtype())) {
    throw Error(std::string("random.bernoulli: p must have a floating dtype, got ") +
                dtype_name(p.dtype()));
  }
  const Shape s = shape.value_or(p.shape());
  if (!detail::broadcasts_to(p.shape(), s)) {
    throw Error("random.bernoulli: p of shape " + p.shape().str() +
                " must broadcast to the requested shape " + s.str());
  }
  const std::vector<double> pv = [&] {
    loom::detail::KernelRead reading;
    return p.to_vector<double>();
  }();
  for (double v : pv) detail::check_probability(v, "bernoulli");
  const Array u = detail::uniform_scaled(key, s, p.dtype(), 0.0, 1.0, 1.0, "bernoulli");
  const std::vector<std::int64_t> map = detail::broadcast_map(p.shape(), s);
  Array out = Array::empty(s, DType::bool_);
  bool* o = out.mutable_data<bool>();
  if (p.dtype() == DType::float32) {
    const float* ud = u.data<float>();
    const float* pd = p.data<float>();
    for (std::int64_t i = 0; i < u.size(); ++i) o[i] = ud[i] < pd[map[static_cast<std::size_t>(i)]];
  } else {
    const double* ud = u.data<double>();
    const double* pd = p.data<double>();
    for (std::int64_t i = 0; i < u.size(); ++i) o[i] = ud[i] < pd[map[static_cast<std::size_t>(i)]];
  }
  static constexpr loom::detail::Primitive kBernoulli{.name = "random_bernoulli"};
  detail::bind_random(kBernoulli, out, {&key.data(), &p}, [shape](const detail::In& in) {
    return bernoulli(Key(in[0]), in[1], shape);
  });
  return out;
}

Array randint(const Key& key, Shape shape, std::int64_t minval, std::int64_t maxval, DType dtype) {
  const auto [k0, k1] = detail::single_key(key, "randint");
  detail::check_shape(shape, "randint");
  if (dtype != DType::int32 && dtype != DType::uint32) {
    throw Error(std::string("random.randint: dtype must be int32 or uint32, got ") +
                dtype_name(dtype));
  }
  if (minval >= maxval) {
    throw Error(
        "random.randint: minval must be less than maxval, got minval=" + std::to_string(minval) +
        ", maxval=" + std::to_string(maxval) + " (JAX would silently return minval)");
  }
  const std::int64_t lo_lim = dtype == DType::int32 ? std::numeric_limits<std::int32_t>::min() : 0;
  const std::int64_t hi_lim = dtype == DType::int32 ? std::numeric_limits<std::int32_t>::max()
                                                    : std::numeric_limits<std::uint32_t>::max();
  const bool max_out_of_range = maxval > hi_lim;
  const std::int64_t mn = std::clamp(minval, lo_lim, hi_lim);
  const std::int64_t mx = std::clamp(maxval, lo_lim, hi_lim);
  // All of this is uint32 arithmetic with wrap-around, as in JAX.
  std::uint32_t span = static_cast<std::uint32_t>(mx - mn);
  if (mx <= mn) span = 1;
  if (max_out_of_range && mx > mn) span += 1;
  auto urem = [](std::uint32_t a, std::uint32_t b) {
    return b == 0 ? a : a % b;
  };  // XLA: x % 0 = x
  std::uint32_t mult = urem(1u << 16, span);
  mult = urem(mult * mult, span);
  const auto keys = detail::split_words(k0, k1, 2, current_mode());
  const std::int64_t n = shape.numel();
  std::vector<std::uint32_t> hi(static_cast<std::size_t>(n)), lo(static_cast<std::size_t>(n));
  detail::bits32(keys[0].first, keys[0].second, n, hi.data(), current_mode());
  detail::bits32(keys[1].first, keys[1].second, n, lo.data(), current_mode());
  Array out = Array::empty(shape, dtype);
  auto* o = static_cast<std::uint32_t*>(out.raw_mutable_data());  // int32/uint32 share a layout
  const std::uint32_t base = static_cast<std::uint32_t>(mn);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::size_t j = static_cast<std::size_t>(i);
    const std::uint32_t off = urem(urem(hi[j], span) * mult + urem(lo[j], span), span);
    o[i] = base + off;
  }
  static constexpr loom::detail::Primitive kRandint{.name = "random_randint"};
  detail::bind_random(kRandint, out, {&key.data()},
                      [shape, minval, maxval, dtype](const detail::In& in) {
                        return randint(Key(in[0]), shape, minval, maxval, dtype);
                      });
  return out;
}

Array categorical(const Key& key, const Array& logits, int axis, std::optional<Shape> shape) {
  if (!logits.valid()) throw Error("random.categorical: logits is an empty array");
  if (!is_floating(logits.dtype())) {
    throw Error(std::string("random.categorical: logits must be float32 or float64, got ") +
                dtype_name(logits.dtype()));
  }
  const int nd = logits.ndim();
  if (nd == 0)
    throw Error("random.categorical: logits must have at least one dimension, got shape ()");
  const int ax = detail::canonical_axis(axis, nd, "categorical", logits.shape());
  if (logits.shape()[ax] == 0) {
    throw Error("random.categorical: logits of shape " + logits.shape().str() +
                " have no categories along axis " + std::to_string(axis));
  }
  const Shape batch = detail::shape_of_batch(logits.shape(), ax);
  const Shape out_shape = shape.value_or(batch);
  if (!detail::broadcasts_to(batch, out_shape)) {
    throw Error("random.categorical: shape " + out_shape.str() +
                " must end with (a broadcast of) the batch shape " + batch.str() +
                " of logits of shape " + logits.shape().str());
  }
  const int nprefix = out_shape.size() - batch.size();
  Shape full;  // prefix + out batch dims with the category axis inserted at ax
  for (int d = 0; d < nprefix; ++d) full.push_back(out_shape[d]);
  for (int d = nprefix; d < out_shape.size(); ++d) {
    if (d - nprefix == ax) full.push_back(logits.shape()[ax]);
    full.push_back(out_shape[d]);
  }
  if (ax == batch.size()) full.push_back(logits.shape()[ax]);
  const int full_axis = nprefix + ax;
  const Array g = detail::gumbel_impl(key, full, logits.dtype(), "categorical");
  const std::vector<std::int64_t> map = detail::broadcast_map(logits.shape(), full);
  const std::int64_t len = full[full_axis];
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < full_axis; ++d) outer *= full[d];
  for (int d = full_axis + 1; d < full.size(); ++d) inner *= full[d];
  Array out = Array::empty(out_shape, DType::int32);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  auto run = [&]<typename T>() {
    const T* gd = g.data<T>();
    const T* ld = logits.data<T>();
    for (std::int64_t a = 0; a < outer; ++a) {
      for (std::int64_t i = 0; i < inner; ++i) {
        std::int64_t best = 0;
        T best_v = -std::numeric_limits<T>::infinity();
        bool first = true;
        for (std::int64_t j = 0; j < len; ++j) {
          const std::size_t f = static_cast<std::size_t>((a * len + j) * inner + i);
          const T v = gd[f] + ld[map[f]];
          if (first || v > best_v || (std::isnan(v) && !std::isnan(best_v))) {
            best_v = v;
            best = j;
            first = false;
          }
        }
        o[a * inner + i] = static_cast<std::int32_t>(best);
      }
    }
  };
  if (logits.dtype() == DType::float32)
    run.template operator()<float>();
  else
    run.template operator()<double>();
  static constexpr loom::detail::Primitive kCategorical{.name = "random_categorical"};
  detail::bind_random(
      kCategorical, out, {&key.data(), &logits},
      [axis, shape](const detail::In& in) { return categorical(Key(in[0]), in[1], axis, shape); });
  return out;
}
}  // namespace loom::random
