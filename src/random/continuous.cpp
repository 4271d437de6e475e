// The continuous samplers of loom::random (uniform, normal, truncated_normal, gumbel), written
// as direct loops over buffers. The float32 transforms run in the vectorized kernels
// (kernels.inc); float64 follows JAX's construction with libm's functions. Facts (not code)
// from jax/_src/random.py.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "detail/dispatch.hpp"
#include "loom/random.hpp"
#include "random/kernels.hpp"
#include "random/random_internal.hpp"

namespace loom::random {
namespace detail {
namespace {

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

}  // namespace

Array gumbel_impl(const Key& key, const Shape& shape, DType dtype, const char* op) {
  Array out = gumbel_kernel(key, shape, dtype, op);
  static constexpr loom::detail::Primitive kGumbel{.name = "random_gumbel"};
  bind_random(kGumbel, out, {&key.data()}, [shape, dtype, op](const In& in) {
    return gumbel_impl(Key(in[0]), shape, dtype, op);
  });
  return out;
}

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

}  // namespace loom::random
