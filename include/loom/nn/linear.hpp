// Linear layers, as flax/linen/linear.py: Dense, DenseGeneral, Einsum and Embed (Conv lives in
// nn/conv.hpp).
//
//   nn::Dense layer{.features = 4};
//   loom::Tree variables = layer.init(loom::random::key(0), jnp::ones({1, 3}));
//   // params: bias float32[4], kernel float32[3,4] -- the same values as Flax
//   loom::Array y = layer.apply(variables, x);
//
// dtype/param_dtype follow Flax's promote_dtype: parameters are made in param_dtype; the
// computation runs in `dtype` when set, else in the promotion of the inputs and the parameters
// (float32 at least: integer inputs compute in float32).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  bool operator==(const Dense&) const = default;

  /// y = inputs @ kernel + bias over the last axis of inputs.
  Array call(const Array& inputs) const;
};

/// flax.linen.DenseGeneral: a linear map contracting the input axes `axis` with a kernel of
/// shape (batch..., in..., features...), and a bias of shape (batch..., features...).
/// batch_dims must be the leading axes 0..n-1 (Flax's rule); they are kept, not contracted,
/// and every batch element has its own kernel. The output is (batch..., the other input
/// axes..., features...). As Flax, the initializers see the kernel flattened to 2-D,
/// (prod(batch) * prod(in), prod(features)), and the bias to 1-D, then reshaped: the fans of
/// lecun_normal are those of that matrix.
///   nn::DenseGeneral layer{.features = {4, 5}, .axis = {1, -1}};
///   auto v = layer.init(loom::random::key(0), jnp::ones({1, 3, 6, 7}));
///   // params: bias float32[4,5], kernel float32[3,7,4,5]; output shape (1, 6, 4, 5)
struct DenseGeneral : Module<DenseGeneral> {
  std::vector<std::int64_t> features;  // required: the output feature shape, all positive
  std::vector<int> axis = {-1};        // input axes to contract (negative from the end)
  std::vector<int> batch_dims = {};    // leading input axes with their own kernel
  bool use_bias = true;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer bias_init = initializers::zeros_init();
  bool operator==(const DenseGeneral&) const = default;

  Array call(const Array& inputs) const;
};

/// flax.linen.Einsum: y = einsum(einsum_str, inputs, kernel) + bias with a learnable kernel of
/// `shape`. The equation is explicit ("->") with exactly two operands, the input and the
/// kernel; spaces are ignored and "..." works as in numpy. The bias has the kernel's axes that
/// survive into the output, in output order (Flax's _get_bias_shape), broadcast over the rest.
/// einsum_str is set on the module or at call time, exactly once (merge_param).
///   nn::Einsum layer{.shape = {5, 6, 7}, .einsum_str = "abc,cde->abde"};
///   auto v = layer.init(loom::random::key(0), jnp::ones({3, 4, 5}));
///   // params: bias float32[6,7], kernel float32[5,6,7]; output shape (3, 4, 6, 7)
struct Einsum : Module<Einsum> {
  Shape shape;                            // required: the kernel's shape
  std::optional<std::string> einsum_str;  // here or at call time
  bool use_bias = true;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  initializers::Initializer kernel_init = initializers::lecun_normal();
  initializers::Initializer bias_init = initializers::zeros_init();
  bool operator==(const Einsum&) const = default;

  Array call(const Array& inputs, std::optional<std::string> einsum_str = std::nullopt) const;
};

/// flax.linen.Embed: an (num_embeddings, features) table looked up by integer inputs; the
/// output is inputs.shape + (features,). Negative indices count from the end (jnp.take);
/// an index outside [-num_embeddings, num_embeddings) is a loom::Error (Flax returns NaN).
/// The default initializer is Flax's variance_scaling(1, "fan_in", "normal", out_axis=0),
/// i.e. normal * sqrt(1 / features). attend(query) = query @ embedding.T, the tied output
/// projection of a language model.
///   nn::Embed embed{.num_embeddings = 5, .features = 3};
///   auto v = embed.init(loom::random::key(0), loom::Array({0, 1, 2}));
///   loom::Array e = embed.apply(v, tokens);                       // (..., 3)
///   loom::Array logits = embed.apply(v, &nn::Embed::attend, h);   // (..., 5)
struct Embed : Module<Embed> {
  std::int64_t num_embeddings = 0;  // required: the vocabulary size
  std::int64_t features = 0;        // required: the embedding width
  std::optional<DType> dtype;       // output dtype; empty: the embedding's
  DType param_dtype = DType::float32;
  initializers::Initializer embedding_init =
      initializers::variance_scaling(1.0, "fan_in", "normal", {-2}, {0});
  bool operator==(const Embed&) const = default;

  /// The rows of the table at `inputs` (int32/uint32; other dtypes are a loom::Error).
  Array call(const Array& inputs) const;
  /// query (..., features) @ embedding.T -> (..., num_embeddings).
  Array attend(const Array& query) const;
};

}  // namespace loom::nn

LOOM_NN_HASH_FIELDS(loom::nn::Dense, m.features, m.use_bias, m.dtype, m.param_dtype, m.kernel_init, m.bias_init)
LOOM_NN_HASH_FIELDS(loom::nn::DenseGeneral, m.features, m.axis, m.batch_dims, m.use_bias, m.dtype, m.param_dtype, m.kernel_init, m.bias_init)
LOOM_NN_HASH_FIELDS(loom::nn::Einsum, m.shape, m.einsum_str, m.use_bias, m.dtype, m.param_dtype, m.kernel_init, m.bias_init)
LOOM_NN_HASH_FIELDS(loom::nn::Embed, m.num_embeddings, m.features, m.dtype, m.param_dtype, m.embedding_init)
