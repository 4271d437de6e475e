// The samplers of loom::random, written as direct loops over buffers. The float32 transforms run
// in the vectorized kernels (kernels.inc); float64 follows JAX's construction with libm's
// functions. Facts (not code) from jax/_src/random/core.py.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "detail/host_read.hpp"
#include "detail/dispatch.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/random.hpp"
#include "random/kernels.hpp"
#include "random/random_internal.hpp"

namespace loom::random {
namespace detail {
namespace {

std::string op_name(const char* op) {
  return std::string("random.") + op;
}

void check_float_dtype(DType dtype, const char* op) {
  if (dtype != DType::float32 && dtype != DType::float64) {
    throw Error(op_name(op) + ": dtype must be float32 or float64, got " + dtype_name(dtype));
  }
}

double f64_from_bits(std::uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}

double unit_f64(std::uint64_t bits) {
  return f64_from_bits((bits >> 12) | 0x3FF0000000000000ull) - 1.0;
}

// Giles' double-precision erfinv (the coefficients XLA uses for f64), Horner with fma.
double erfinv_f64(double u) {
  static constexpr double kLo[] = {
      -3.6444120640178196996e-21, -1.685059138182016589e-19,  1.2858480715256400167e-18,
      1.115787767802518096e-17,   -1.333171662854620906e-16,  2.0972767875968561637e-17,
      6.6376381343583238325e-15,  -4.0545662729752068639e-14, -8.1519341976054721522e-14,
      2.6335093153082322977e-12,  -1.2975133253453532498e-11, -5.4154120542946279317e-11,
      1.051212273321532285e-09,   -4.1126339803469836976e-09, -2.9070369957882005086e-08,
      4.2347877827932403518e-07,  -1.3654692000834678645e-06, -1.3882523362786468719e-05,
      0.0001867342080340571352,   -0.00074070253416626697512, -0.0060336708714301490533,
      0.24015818242558961693,     1.6536545626831027356};
  static constexpr double kMid[] = {
      2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
      1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
      2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
      6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
      0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
      -0.0037512085075692412107, 0.005370914553590063617,   1.0052589676941592334,
      3.0838856104922207635};
  static constexpr double kHi[] = {
      -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
      -3.7894654401267369937e-09, 7.6157012080783393804e-09,  -1.4960026627149240478e-08,
      2.9147953450901080826e-08,  -6.7711997758452339498e-08, 2.2900482228026654717e-07,
      -9.9298272942317002539e-07, 4.5260625972231537039e-06,  -1.9681778105531670567e-05,
      7.5995277030017761139e-05,  -0.00021503011930044477347, -0.00013871931833623122026,
      1.0103004648645343977,      4.8499064014085844221};
  if (std::fabs(u) == 1.0) return u * std::numeric_limits<double>::infinity();
  const double w = -std::log1p(u * -u);
  auto horner = [](const double* c, std::size_t n, double t) {
    double p = c[0];
    for (std::size_t i = 1; i < n; ++i) p = std::fma(p, t, c[i]);
    return p;
  };
  double p;
  if (w < 6.25) {
    p = horner(kLo, std::size(kLo), w - 3.125);
  } else if (w < 16.0) {
    p = horner(kMid, std::size(kMid), std::sqrt(w) - 3.25);
  } else {
    p = horner(kHi, std::size(kHi), std::sqrt(w) - 5.0);
  }
  return p * u;
}

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

int canonical_axis(int axis, int ndim, const char* op, const Shape& shape) {
  const int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    throw Error(op_name(op) + ": axis " + std::to_string(axis) + " is out of bounds for shape " +
                shape.str());
  }
  return a;
}

// Float32 samples of a 32-bit-word transform, filled chunk by chunk from the hash.
template <typename Transform>
Array fill_f32(const Key& key, const Shape& shape, const char* op, Transform&& transform) {
  const auto [k0, k1] = single_key(key, op);
  check_shape(shape, op);
  Array out = Array::empty(shape, DType::float32);
  float* o = out.mutable_data<float>();
  for_bits32_chunks(k0, k1, shape.numel(), current_mode(),
                    [&](const std::uint32_t* bits, std::int64_t off, std::int64_t n) {
                      transform(bits, o + off, n);
                    });
  return out;
}

// Float64 samples from 64-bit words.
template <typename Transform>
Array fill_f64(const Key& key, const Shape& shape, const char* op, Transform&& transform) {
  const auto [k0, k1] = single_key(key, op);
  check_shape(shape, op);
  const std::int64_t n = shape.numel();
  Array out = Array::empty(shape, DType::float64);
  double* o = out.mutable_data<double>();
  std::vector<std::uint64_t> b(static_cast<std::size_t>(n));
  bits64(k0, k1, n, b.data(), current_mode());
  loom::detail::parallel_for(n, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) o[i] = transform(unit_f64(b[static_cast<std::size_t>(i)]));
  });
  return out;
}

Array gumbel_kernel(const Key& key, const Shape& shape, DType dtype, const char* op) {
  check_float_dtype(dtype, op);
  if (dtype == DType::float32) {
    const auto& k = kernels();
    return fill_f32(key, shape, op, [&](const std::uint32_t* bits, float* o, std::int64_t n) {
      k.gumbel_f32(bits, o, n);
    });
  }
  constexpr double kTiny = std::numeric_limits<double>::min();
  return fill_f64(key, shape, op, [](double f) {
    double u = std::fma(f, 1.0 - kTiny, kTiny);
    u = u < kTiny ? kTiny : u;
    return -std::log(-std::log(u));
  });
}

using In = std::vector<Array>;

Array gumbel_impl(const Key& key, const Shape& shape, DType dtype, const char* op) {
  Array out = gumbel_kernel(key, shape, dtype, op);
  static constexpr loom::detail::Primitive kGumbel{.name = "random_gumbel"};
  bind_random(kGumbel, out, {&key.data()}, [shape, dtype, op](const In& in) {
    return gumbel_impl(Key(in[0]), shape, dtype, op);
  });
  return out;
}

// Stable sort of each 1-D slice along `axis` by fresh 32-bit keys, `rounds` times (JAX's
// _shuffle). Returns, for an array of shape `shape`, the source index along `axis` of every
// element.
std::vector<std::int64_t> shuffle_sources(const Key& key, const Shape& shape, int axis) {
  const std::int64_t size = shape.numel();
  const std::int64_t len = shape[axis];
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (int d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  // src[(o * len + j) * inner + i] = index along axis that element came from.
  std::vector<std::int64_t> src(static_cast<std::size_t>(size));
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < len; ++j)
      for (std::int64_t i = 0; i < inner; ++i)
        src[static_cast<std::size_t>((o * len + j) * inner + i)] = j;
  const double exponent = 3.0;
  const int rounds = static_cast<int>(
      std::ceil(exponent * std::log(static_cast<double>(std::max<std::int64_t>(1, size))) /
                std::log(static_cast<double>(std::numeric_limits<std::uint32_t>::max()))));
  const ThreefryMode mode = current_mode();
  auto [k0, k1] = single_key(key, "permutation");
  std::vector<std::uint32_t> sort_keys(static_cast<std::size_t>(size));
  std::vector<std::int64_t> order(static_cast<std::size_t>(len)),
      tmp(static_cast<std::size_t>(len));
  for (int r = 0; r < rounds; ++r) {
    const auto w = split_words(k0, k1, 2, mode);
    k0 = w[0].first;
    k1 = w[0].second;
    bits32(w[1].first, w[1].second, size, sort_keys.data(), mode);
    for (std::int64_t o = 0; o < outer; ++o) {
      for (std::int64_t i = 0; i < inner; ++i) {
        auto at = [&](std::int64_t j) {
          return static_cast<std::size_t>((o * len + j) * inner + i);
        };
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
          return sort_keys[at(a)] < sort_keys[at(b)];
        });
        for (std::int64_t j = 0; j < len; ++j)
          tmp[static_cast<std::size_t>(j)] = src[at(order[static_cast<std::size_t>(j)])];
        for (std::int64_t j = 0; j < len; ++j) src[at(j)] = tmp[static_cast<std::size_t>(j)];
      }
    }
  }
  return src;
}

void check_probability(double p, const char* op) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw Error(op_name(op) + ": p must be in [0, 1], got " + std::to_string(p));
  }
}

}  // namespace

Array uniform_scaled_kernel(const Key& key, const Shape& shape, DType dtype, double minval,
                            double maxval, double scale, const char* op) {
  check_float_dtype(dtype, op);
  if (dtype == DType::float32) {
    const float lo = static_cast<float>(minval), hi = static_cast<float>(maxval);
    const float span = hi - lo, s = static_cast<float>(scale);
    const auto& k = kernels();
    return fill_f32(key, shape, op, [&](const std::uint32_t* bits, float* o, std::int64_t n) {
      k.uniform_f32(bits, o, n, lo, span, s);
    });
  }
  const double span = maxval - minval;
  return fill_f64(key, shape, op, [=](double f) {
    const double v = std::fma(f, span, minval);
    return (v < minval ? minval : v) * scale;
  });
}

Array normal_scaled_kernel(const Key& key, const Shape& shape, DType dtype, double scale,
                           const char* op) {
  check_float_dtype(dtype, op);
  if (dtype == DType::float32) {
    const float lo = std::nextafter(-1.0f, 0.0f);
    const float span = 1.0f - lo, s = static_cast<float>(scale);
    const float inf = std::numeric_limits<float>::infinity();
    const auto& k = kernels();
    return fill_f32(key, shape, op, [&](const std::uint32_t* bits, float* o, std::int64_t n) {
      k.erfinv_f32(bits, o, n, lo, span, -inf, inf, s);
    });
  }
  const double lo = std::nextafter(-1.0, 0.0), span = 1.0 - lo;
  const double sqrt2 = std::sqrt(2.0);
  return fill_f64(key, shape, op, [=](double f) {
    double u = std::fma(f, span, lo);
    u = u < lo ? lo : u;
    return sqrt2 * erfinv_f64(u) * scale;
  });
}

Array truncated_normal_scaled_kernel(const Key& key, double lower, double upper, const Shape& shape,
                                     DType dtype, double scale, const char* op) {
  check_float_dtype(dtype, op);
  if (std::isnan(lower) || std::isnan(upper)) {
    throw Error(op_name(op) + ": lower and upper must not be NaN");
  }
  if (dtype == DType::float32) {
    const float lo = static_cast<float>(lower), hi = static_cast<float>(upper);
    // erf(lower / sqrt(2)): XLA rewrites the division by a constant as a multiplication.
    const float a = xla_erf_f32(lo * 0.707106769f);
    const float b = xla_erf_f32(hi * 0.707106769f);
    const float span = b - a, s = static_cast<float>(scale);
    const float clip_lo = std::nextafter(lo, std::numeric_limits<float>::infinity());
    const float clip_hi = std::nextafter(hi, -std::numeric_limits<float>::infinity());
    const auto& k = kernels();
    return fill_f32(key, shape, op, [&](const std::uint32_t* bits, float* o, std::int64_t n) {
      k.erfinv_f32(bits, o, n, a, span, clip_lo, clip_hi, s);
    });
  }
  const double sqrt2 = std::sqrt(2.0);
  const double a = std::erf(lower / sqrt2), b = std::erf(upper / sqrt2), span = b - a;
  const double clip_lo = std::nextafter(lower, std::numeric_limits<double>::infinity());
  const double clip_hi = std::nextafter(upper, -std::numeric_limits<double>::infinity());
  return fill_f64(key, shape, op, [=](double f) {
    double u = std::fma(f, span, a);
    u = u < a ? a : u;
    double z = sqrt2 * erfinv_f64(u);
    z = z < clip_lo ? clip_lo : z;
    z = z > clip_hi ? clip_hi : z;
    return z * scale;
  });
}

Array uniform_scaled(const Key& key, const Shape& shape, DType dtype, double minval, double maxval,
                     double scale, const char* op) {
  Array out = uniform_scaled_kernel(key, shape, dtype, minval, maxval, scale, op);
  static constexpr loom::detail::Primitive kUniform{.name = "random_uniform"};
  bind_random(kUniform, out, {&key.data()}, [=](const In& in) {
    return uniform_scaled(Key(in[0]), shape, dtype, minval, maxval, scale, op);
  });
  return out;
}

Array normal_scaled(const Key& key, const Shape& shape, DType dtype, double scale, const char* op) {
  Array out = normal_scaled_kernel(key, shape, dtype, scale, op);
  static constexpr loom::detail::Primitive kNormal{.name = "random_normal"};
  bind_random(kNormal, out, {&key.data()},
              [=](const In& in) { return normal_scaled(Key(in[0]), shape, dtype, scale, op); });
  return out;
}

Array truncated_normal_scaled(const Key& key, double lower, double upper, const Shape& shape,
                              DType dtype, double scale, const char* op) {
  Array out = truncated_normal_scaled_kernel(key, lower, upper, shape, dtype, scale, op);
  static constexpr loom::detail::Primitive kTruncatedNormal{.name = "random_truncated_normal"};
  bind_random(kTruncatedNormal, out, {&key.data()}, [=](const In& in) {
    return truncated_normal_scaled(Key(in[0]), lower, upper, shape, dtype, scale, op);
  });
  return out;
}

}  // namespace detail

Array uniform(const Key& key, Shape shape, DType dtype, double minval, double maxval) {
  return detail::uniform_scaled(key, shape, dtype, minval, maxval, 1.0, "uniform");
}

Array normal(const Key& key, Shape shape, DType dtype) {
  return detail::normal_scaled(key, shape, dtype, 1.0, "normal");
}

Array truncated_normal(const Key& key, double lower, double upper, Shape shape, DType dtype) {
  return detail::truncated_normal_scaled(key, lower, upper, shape, dtype, 1.0, "truncated_normal");
}

Array gumbel(const Key& key, Shape shape, DType dtype) {
  return detail::gumbel_impl(key, shape, dtype, "gumbel");
}

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

Array permutation(const Key& key, std::int64_t n) {
  detail::single_key(key, "permutation");
  if (n < 0) throw Error("random.permutation: n must be non-negative, got " + std::to_string(n));
  const std::vector<std::int64_t> src = detail::shuffle_sources(key, Shape{n}, 0);
  Array out = Array::empty(Shape{n}, DType::int32);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    o[i] = static_cast<std::int32_t>(src[static_cast<std::size_t>(i)]);
  static constexpr loom::detail::Primitive kPermutation{.name = "random_permutation"};
  detail::bind_random(kPermutation, out, {&key.data()},
                      [n](const detail::In& in) { return permutation(Key(in[0]), n); });
  return out;
}

namespace {
// The source index along `axis` of every element of an independently shuffled array of `shape`
// (int32, that shape), for take_along_axis.
Array shuffle_indices(const Key& key, const Shape& shape, int axis) {
  const std::vector<std::int64_t> src = detail::shuffle_sources(key, shape, axis);
  Array out = Array::empty(shape, DType::int32);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  for (std::size_t i = 0; i < src.size(); ++i) o[i] = static_cast<std::int32_t>(src[i]);
  static constexpr loom::detail::Primitive kShuffle{.name = "random_shuffle"};
  detail::bind_random(kShuffle, out, {&key.data()}, [shape, axis](const detail::In& in) {
    return shuffle_indices(Key(in[0]), shape, axis);
  });
  return out;
}
}  // namespace

Array permutation(const Key& key, const Array& x, int axis, bool independent) {
  detail::single_key(key, "permutation");
  if (!x.valid()) throw Error("random.permutation: x is an empty array");
  if (x.ndim() == 0) {
    if (!is_integer(x.dtype())) {
      throw Error(std::string("random.permutation: x must be an integer or at least 1-D, got a ") +
                  dtype_name(x.dtype()) + " scalar");
    }
    return permutation(key, static_cast<std::int64_t>(x.item<double>()));
  }
  const int ax = detail::canonical_axis(axis, x.ndim(), "permutation", x.shape());
  if (!independent || x.ndim() == 1) {
    // The same permutation for every slice: shuffle the indices 0..len-1 (as JAX does for
    // ndim > 1; for 1-D x, sorting x by the keys is the same permutation).
    return numpy::take(x, permutation(key, x.shape()[ax]), ax);
  }
  return numpy::take_along_axis(x, shuffle_indices(key, x.shape(), ax), ax);
}

namespace {

// Indices into 0..n-1 for choice (shape `shape`), shared by both overloads.
std::vector<std::int64_t> choice_indices(const Key& key, std::int64_t n_inputs, const Shape& shape,
                                         bool replace, const std::optional<Array>& p) {
  const std::int64_t n_draws = shape.numel();
  std::vector<std::int64_t> ind(static_cast<std::size_t>(n_draws));
  if (!p) {
    if (replace) {
      const Array r = randint(key, shape, 0, n_inputs);
      const std::int32_t* rd = r.data<std::int32_t>();
      for (std::int64_t i = 0; i < n_draws; ++i) ind[static_cast<std::size_t>(i)] = rd[i];
    } else {
      const auto src = detail::shuffle_sources(key, Shape{n_inputs}, 0);
      std::copy(src.begin(), src.begin() + n_draws, ind.begin());
    }
    return ind;
  }
  if (!p->valid() || !is_floating(p->dtype())) {
    throw Error("random.choice: p must be a float32 or float64 array");
  }
  if (p->shape() != Shape{n_inputs}) {
    throw Error(
        "random.choice: p must be None or a 1-D vector with the same size as a.shape[axis]; "
        "p has shape " +
        p->shape().str() + " and a.shape[axis] is " + std::to_string(n_inputs));
  }
  auto run = [&]<typename T>() {
    const T* pd = p->data<T>();
    for (std::int64_t i = 0; i < n_inputs; ++i) {
      if (!(pd[i] >= T(0))) {  // JAX does not check; a negative or NaN weight would index past a
        throw Error("random.choice: p must be non-negative, got p[" + std::to_string(i) +
                    "] = " + std::to_string(static_cast<double>(pd[i])));
      }
    }
    if (replace) {
      std::vector<T> cum(static_cast<std::size_t>(n_inputs));
      T acc = 0;
      for (std::int64_t i = 0; i < n_inputs; ++i)
        cum[static_cast<std::size_t>(i)] = acc = acc + pd[i];
      const Array u = uniform(key, shape, dtype_of<T>());
      const T* ud = u.data<T>();
      for (std::int64_t i = 0; i < n_draws; ++i) {
        const T r = cum.back() * (T(1) - ud[i]);
        ind[static_cast<std::size_t>(i)] =
            std::lower_bound(cum.begin(), cum.end(), r) - cum.begin();
      }
    } else {
      const Array g = detail::gumbel_impl(key, Shape{n_inputs}, dtype_of<T>(), "choice");
      const T* gd = g.data<T>();
      std::vector<T> score(static_cast<std::size_t>(n_inputs));
      for (std::int64_t i = 0; i < n_inputs; ++i) {
        T lp;
        if constexpr (std::is_same_v<T, float>)
          lp = detail::kernels().log_f32(pd[i]);
        else
          lp = std::log(pd[i]);
        score[static_cast<std::size_t>(i)] = gd[i] + lp;
      }
      std::vector<std::int64_t> order(static_cast<std::size_t>(n_inputs));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        return score[static_cast<std::size_t>(a)] > score[static_cast<std::size_t>(b)];
      });
      std::copy(order.begin(), order.begin() + n_draws, ind.begin());
    }
  };
  if (p->dtype() == DType::float32)
    run.template operator()<float>();
  else
    run.template operator()<double>();
  return ind;
}

void check_choice(std::int64_t n_inputs, std::int64_t n_draws, bool replace) {
  if (n_inputs <= 0) {
    throw Error("random.choice: a must be greater than 0 unless no samples are taken, got " +
                std::to_string(n_inputs));
  }
  if (!replace && n_draws > n_inputs) {
    throw Error("random.choice: cannot take a larger sample (size " + std::to_string(n_draws) +
                ") than the population (size " + std::to_string(n_inputs) + ") when replace=false");
  }
}

}  // namespace

Array choice(const Key& key, std::int64_t n, Shape shape, bool replace, std::optional<Array> p) {
  detail::single_key(key, "choice");
  detail::check_shape(shape, "choice");
  const std::int64_t n_draws = shape.numel();
  Array out = Array::empty(shape, DType::int32);
  if (n_draws == 0) return out;
  check_choice(n, n_draws, replace);
  const auto ind = choice_indices(key, n, shape, replace, p);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  for (std::int64_t i = 0; i < n_draws; ++i)
    o[i] = static_cast<std::int32_t>(ind[static_cast<std::size_t>(i)]);
  static constexpr loom::detail::Primitive kChoice{.name = "random_choice"};
  if (p) {
    detail::bind_random(kChoice, out, {&key.data(), &*p},
                        [n, shape, replace](const detail::In& in) {
                          return choice(Key(in[0]), n, shape, replace, in[1]);
                        });
  } else {
    detail::bind_random(kChoice, out, {&key.data()}, [n, shape, replace](const detail::In& in) {
      return choice(Key(in[0]), n, shape, replace, std::nullopt);
    });
  }
  return out;
}

Array choice(const Key& key, const Array& a, Shape shape, bool replace, std::optional<Array> p,
             int axis) {
  detail::single_key(key, "choice");
  detail::check_shape(shape, "choice");
  if (!a.valid()) throw Error("random.choice: a is an empty array");
  if (a.ndim() == 0) {
    if (!is_integer(a.dtype())) {
      throw Error(std::string("random.choice: a must be an integer or an array, got a ") +
                  dtype_name(a.dtype()) + " scalar");
    }
    return choice(key, static_cast<std::int64_t>(a.item<double>()), shape, replace, p);
  }
  const int ax = detail::canonical_axis(axis, a.ndim(), "choice", a.shape());
  const std::int64_t n_inputs = a.shape()[ax];
  const std::int64_t n_draws = shape.numel();
  if (n_draws != 0) check_choice(n_inputs, n_draws, replace);
  return numpy::take(a, choice(key, n_inputs, shape, replace, p), ax);
}

}  // namespace loom::random
