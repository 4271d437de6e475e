// nn::Dense: a linear transformation over the last axis (flax.linen.Dense).
//
//   nn::Dense layer{.features = 4};
//   loom::Tree variables = layer.init(loom::random::key(0), jnp::ones({1, 3}));
//   // params: bias float32[4], kernel float32[3,4] -- the same values as Flax
//   loom::Array y = layer.apply(variables, x);
#pragma once

#include <cstdint>
#include <optional>

#include "loom/nn/initializers.hpp"
#include "loom/nn/module.hpp"

namespace loom::nn {

/// Flax's fields and defaults: kernel (in, features) drawn with lecun_normal, bias zeros.
struct Dense : Module<Dense> {
  std::int64_t features = 0;  // required (Flax has no default); must be positive
  bool use_bias = true;
  std::optional<DType> dtype;          // computation dtype; empty: promote inputs and params
  DType param_dtype = DType::float32;  // dtype the initializers produce
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer bias_init = initializers::zeros_init();

  /// y = inputs @ kernel + bias over the last axis of inputs.
  Array call(const Array& inputs) const;
};

}  // namespace loom::nn
