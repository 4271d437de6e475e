// loom::nn::initializers: parameter initializers, as jax.nn.initializers / flax.linen.initializers.
//
//   namespace init = loom::nn::initializers;
//   init::Initializer w_init = init::lecun_normal();           // Dense's default kernel_init
//   loom::Array w = w_init(loom::random::key(0), {784, 128}, loom::DType::float32);
//   loom::Array b = init::zeros_init()(loom::random::key(0), {128}, loom::DType::float32);
//
// An Initializer is a value (a std::function), so layers take one as a hyperparameter just as
// Flax's `kernel_init=...`. Each factory takes JAX's parameters with JAX's defaults, and for the
// same key, shape and dtype its float32 output has the same bits as JAX's (orthogonal and
// delta_orthogonal excepted: they go through a QR decomposition, which rounds differently from
// LAPACK's).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/random.hpp"

namespace loom::nn::initializers {

/// init(key, shape, dtype) -> Array of that shape and dtype.
using Initializer = std::function<Array(const random::Key& key, const Shape& shape, DType dtype)>;

/// Constant initializers (they ignore the key).
///   auto b = loom::nn::initializers::zeros_init()(k, {3}, loom::DType::float32);
Initializer zeros_init();
Initializer ones_init();
Initializer constant(double value);
/// The plain functions jax.nn.initializers.zeros / ones.
Array zeros(const random::Key& key, const Shape& shape, DType dtype = DType::float32);
Array ones(const random::Key& key, const Shape& shape, DType dtype = DType::float32);

/// normal(stddev): N(0, stddev^2).   uniform(scale): U[0, scale).
Initializer normal(double stddev = 1e-2);
Initializer uniform(double scale = 1e-2);
/// truncated_normal(stddev, lower, upper): stddev * (standard normal truncated to (lower, upper)).
Initializer truncated_normal(double stddev = 1e-2, double lower = -2.0, double upper = 2.0);

/// Fan sizes of a weight shape (jax.nn.initializers._compute_fans): every axis that is not an
/// in/out/batch axis belongs to the receptive field, which multiplies both fans.
///   compute_fans({3, 3, 16, 32}) == {144, 288}   // a 3x3 conv kernel, 16 -> 32 channels
struct Fans {
  double fan_in = 0;
  double fan_out = 0;
};
Fans compute_fans(const Shape& shape, std::vector<int> in_axis = {-2},
                  std::vector<int> out_axis = {-1}, std::vector<int> batch_axis = {});

/// variance_scaling(scale, mode, distribution): samples with variance scale / n where n is
/// fan_in, fan_out, (fan_in + fan_out) / 2 ("fan_avg") or sqrt(fan_in * fan_out) ("fan_geo_avg");
/// distribution "truncated_normal" (truncated at 2 standard deviations, then rescaled),
/// "normal" or "uniform". Axes may be given as one axis or several.
///   auto init = variance_scaling(2.0, "fan_in", "truncated_normal");   // he_normal
Initializer variance_scaling(double scale, std::string mode, std::string distribution,
                             std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                             std::vector<int> batch_axis = {});

/// The named special cases of variance_scaling (scale, mode, distribution):
///   lecun_normal (1, fan_in, truncated_normal)    lecun_uniform (1, fan_in, uniform)
///   glorot_normal (1, fan_avg, truncated_normal)  glorot_uniform (1, fan_avg, uniform)
///   he_normal (2, fan_in, truncated_normal)       he_uniform (2, fan_in, uniform)
Initializer lecun_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                         std::vector<int> batch_axis = {});
Initializer lecun_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                          std::vector<int> batch_axis = {});
Initializer glorot_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                          std::vector<int> batch_axis = {});
Initializer glorot_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                           std::vector<int> batch_axis = {});
Initializer he_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                      std::vector<int> batch_axis = {});
Initializer he_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                       std::vector<int> batch_axis = {});
Initializer xavier_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                          std::vector<int> batch_axis = {});
Initializer xavier_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                           std::vector<int> batch_axis = {});
Initializer kaiming_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                           std::vector<int> batch_axis = {});
Initializer kaiming_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                            std::vector<int> batch_axis = {});

/// orthogonal(scale, column_axis): scale * a uniformly distributed (Haar) orthogonal matrix,
/// reshaped so that the slices along column_axis are orthonormal (rows or columns, whichever
/// side is smaller). The shape needs at least 2 dimensions.
///   auto q = orthogonal()(k, {4, 4}, loom::DType::float32);   // q^T q == I
Initializer orthogonal(double scale = 1.0, int column_axis = -1);
/// delta_orthogonal(scale, column_axis): a 3-D/4-D/5-D conv kernel that is zero except at the
/// spatial centre, where it holds an orthogonal (in, out) matrix; needs in <= out.
Initializer delta_orthogonal(double scale = 1.0, int column_axis = -1);

}  // namespace loom::nn::initializers
