// loom::nn::initializers: parameter initializers, as jax.nn.initializers / flax.linen.initializers.
//
//   namespace init = loom::nn::initializers;
//   init::Initializer w_init = init::lecun_normal();           // Dense's default kernel_init
//   loom::Array w = w_init(loom::random::key(0), {784, 128}, loom::DType::float32);
//   loom::Array b = init::zeros_init()(loom::random::key(0), {128}, loom::DType::float32);
//
// An Initializer is a value (an nn::Function, nn/function.hpp), so layers take one as a
// hyperparameter just as Flax's `kernel_init=...`, and it compares by a canonical description
// of the factory and its parameters, so modules with the same initializers compare equal:
//   init::lecun_normal() == init::lecun_normal()                               // true
//   init::lecun_normal() == init::variance_scaling(1.0, "fan_in", "truncated_normal")  // true
//   init::lecun_normal() == init::he_normal()                                  // false
//   init::lecun_normal().description()
//   // "variance_scaling(scale=1, mode=fan_in, distribution=truncated_normal, in_axis=-2,
//   //  out_axis=-1, batch_axis=())"
// (Flax's initializers are closures that compare by identity, so there two calls of
// lecun_normal() differ; loom compares what they compute.) A user lambda converts to an
// Initializer too and equals only its own copies; Initializer("name(...)", lambda) gives it a
// description to compare by. Each factory takes JAX's parameters with JAX's defaults, and for the
// same key, shape and dtype its float32 output has the same bits as JAX's (orthogonal and
// delta_orthogonal excepted: they go through a QR decomposition, which rounds differently from
// LAPACK's).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/nn/function.hpp"
#include "loom/random.hpp"

namespace loom::nn::initializers {

/// init(key, shape, dtype) -> Array of that shape and dtype; comparable and hashable.
///   loom::nn::initializers::Initializer w_init = loom::nn::initializers::lecun_normal();
///   loom::nn::initializers::Initializer mine = [](const loom::random::Key&, const loom::Shape& s,
///                                                 loom::DType d) { return jnp::full(s, 2.0, d); };
using Initializer = Function<Array(const random::Key& key, const Shape& shape, DType dtype)>;

/// Constant initializers (they ignore the key).
/// zeros_init(): an Initializer returning zeros (Flax's nn.initializers.zeros_init()).
///   auto b = loom::nn::initializers::zeros_init()(k, {3}, loom::DType::float32);
Initializer zeros_init();
/// ones_init(): an Initializer returning ones (Flax's nn.initializers.ones_init()).
///   auto scale = loom::nn::initializers::ones_init()(k, {128}, loom::DType::float32);
Initializer ones_init();
/// constant(value): an Initializer filling the array with `value`
/// (jax.nn.initializers.constant(value)).
///   auto b = loom::nn::initializers::constant(0.1)(k, {128}, loom::DType::float32);
Initializer constant(double value);
/// The plain function jax.nn.initializers.zeros: zeros of `shape` (default dtype float32).
///   loom::Array b = loom::nn::initializers::zeros(k, {128});
Array zeros(const random::Key& key, const Shape& shape, DType dtype = DType::float32);
/// The plain function jax.nn.initializers.ones: ones of `shape` (default dtype float32).
///   loom::Array g = loom::nn::initializers::ones(k, {128}, loom::DType::float64);
Array ones(const random::Key& key, const Shape& shape, DType dtype = DType::float32);

/// The random initializers below take dtype float32 or float64; others are a loom::Error.
/// normal(stddev = 1e-2): samples of N(0, stddev^2) (jax.nn.initializers.normal).
///   auto w = loom::nn::initializers::normal(0.02)(k, {768, 768}, loom::DType::float32);
Initializer normal(double stddev = 1e-2);
/// uniform(scale = 1e-2): samples of U[0, scale) (jax.nn.initializers.uniform).
///   auto w = loom::nn::initializers::uniform(0.1)(k, {3, 4}, loom::DType::float32);
Initializer uniform(double scale = 1e-2);
/// truncated_normal(stddev, lower, upper): stddev * (standard normal truncated to (lower, upper)),
/// defaults 1e-2, -2, 2 (jax.nn.initializers.truncated_normal).
///   auto w = loom::nn::initializers::truncated_normal(0.02)(k, {64, 64}, loom::DType::float32);
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
/// "normal" or "uniform". Axes may be given as one axis or several. A bad mode or distribution,
/// or scale <= 0, is a loom::Error at construction; a shape without fans is one at the call.
///   auto init = variance_scaling(2.0, "fan_in", "truncated_normal");   // he_normal
Initializer variance_scaling(double scale, std::string mode, std::string distribution,
                             std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                             std::vector<int> batch_axis = {});

/// The named special cases of variance_scaling (jax.nn.initializers of the same names). Each
/// takes the fan axes of compute_fans (defaults in_axis -2, out_axis -1, no batch axis).
/// lecun_normal: variance_scaling(1.0, "fan_in", "truncated_normal"); Flax's default
/// kernel_init.
///   auto w = loom::nn::initializers::lecun_normal()(k, {784, 128}, loom::DType::float32);
Initializer lecun_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                         std::vector<int> batch_axis = {});
/// lecun_uniform: variance_scaling(1.0, "fan_in", "uniform").
///   auto w = loom::nn::initializers::lecun_uniform()(k, {784, 128}, loom::DType::float32);
Initializer lecun_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                          std::vector<int> batch_axis = {});
/// glorot_normal: variance_scaling(1.0, "fan_avg", "truncated_normal").
///   auto w = loom::nn::initializers::glorot_normal()(k, {784, 128}, loom::DType::float32);
Initializer glorot_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                          std::vector<int> batch_axis = {});
/// glorot_uniform: variance_scaling(1.0, "fan_avg", "uniform").
///   auto w = loom::nn::initializers::glorot_uniform()(k, {784, 128}, loom::DType::float32);
Initializer glorot_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                           std::vector<int> batch_axis = {});
/// he_normal: variance_scaling(2.0, "fan_in", "truncated_normal").
///   auto w = loom::nn::initializers::he_normal()(k, {3, 3, 16, 32}, loom::DType::float32);
Initializer he_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                      std::vector<int> batch_axis = {});
/// he_uniform: variance_scaling(2.0, "fan_in", "uniform").
///   auto w = loom::nn::initializers::he_uniform()(k, {3, 3, 16, 32}, loom::DType::float32);
Initializer he_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                       std::vector<int> batch_axis = {});
/// xavier_normal: an alias of glorot_normal (the same samples).
///   auto w = loom::nn::initializers::xavier_normal()(k, {784, 128}, loom::DType::float32);
Initializer xavier_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                          std::vector<int> batch_axis = {});
/// xavier_uniform: an alias of glorot_uniform (the same samples).
///   auto w = loom::nn::initializers::xavier_uniform()(k, {784, 128}, loom::DType::float32);
Initializer xavier_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                           std::vector<int> batch_axis = {});
/// kaiming_normal: an alias of he_normal (the same samples).
///   auto w = loom::nn::initializers::kaiming_normal()(k, {3, 3, 16, 32}, loom::DType::float32);
Initializer kaiming_normal(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                           std::vector<int> batch_axis = {});
/// kaiming_uniform: an alias of he_uniform (the same samples).
///   auto w = loom::nn::initializers::kaiming_uniform()(k, {3, 3, 16, 32}, loom::DType::float32);
Initializer kaiming_uniform(std::vector<int> in_axis = {-2}, std::vector<int> out_axis = {-1},
                            std::vector<int> batch_axis = {});

/// orthogonal(scale, column_axis): scale * a uniformly distributed (Haar) orthogonal matrix,
/// reshaped so that the slices along column_axis are orthonormal (rows or columns, whichever
/// side is smaller). The shape needs at least 2 dimensions.
///   auto q = orthogonal()(k, {4, 4}, loom::DType::float32);   // q^T q == I
Initializer orthogonal(double scale = 1.0, int column_axis = -1);
/// delta_orthogonal(scale, column_axis): a 3-D/4-D/5-D conv kernel that is zero except at the
/// spatial centre, where it holds an orthogonal (in, out) matrix; needs in <= out.
///   auto w = loom::nn::initializers::delta_orthogonal()(k, {3, 3, 16, 32}, loom::DType::float32);
Initializer delta_orthogonal(double scale = 1.0, int column_axis = -1);

}  // namespace loom::nn::initializers
