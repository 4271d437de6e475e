// The Transformer encoder block of Flax's examples/wmt (models.py: MlpBlock, Encoder1DBlock), line
// for line: pre-LayerNorm self-attention without biases, dropout, residual; pre-LayerNorm MLP
// (Dense, relu, dropout, Dense, dropout), residual. Same variables tree as Flax:
//   LayerNorm_0/{scale,bias}, MultiHeadDotProductAttention_0/{query,key,value,out}/kernel,
//   LayerNorm_1/{scale,bias}, MlpBlock_0/Dense_0/{kernel,bias}, MlpBlock_0/Dense_1/{kernel,bias}
// `deterministic` is Flax's TransformerConfig field: fixed per model value (train vs eval).
//
//   #include "models/transformer.hpp"
//   loom::models::Encoder1DBlock block{.num_heads = 4, .qkv_dim = 256, .mlp_dim = 1024};
//   loom::Tree v = block.init(loom::random::key(0), jnp::ones({16, 128, 256}));
//   block.deterministic = false;   // training: dropout on
//   loom::Array y = block.apply(v, {.rngs = {{"dropout", key}}}, x);
#pragma once

#include <cstdint>
#include <optional>

#include <loom/loom.hpp>
#include <loom/nn.hpp>

namespace loom::models {

/// TransformerConfig's defaults for the initializers: xavier_uniform kernels, normal(1e-6) biases.
struct MlpBlock : nn::Module<MlpBlock> {
  std::int64_t mlp_dim = 2048;
  std::optional<std::int64_t> out_dim;  // None: the input's feature size
  double dropout_rate = 0.1;
  bool deterministic = false;
  nn::initializers::Initializer kernel_init = nn::initializers::xavier_uniform();
  nn::initializers::Initializer bias_init = nn::initializers::normal(1e-6);

  Array call(const Array& inputs) const {
    const std::int64_t out = out_dim.value_or(inputs.shape().back());
    Array x = nn::Dense{.features = mlp_dim, .kernel_init = kernel_init, .bias_init = bias_init}(
        inputs);
    x = nn::relu(x);
    x = nn::Dropout{.rate = dropout_rate}(x, deterministic);
    Array y =
        nn::Dense{.features = out, .kernel_init = kernel_init, .bias_init = bias_init}(x);
    return nn::Dropout{.rate = dropout_rate}(y, deterministic);
  }
};

struct Encoder1DBlock : nn::Module<Encoder1DBlock> {
  std::int64_t num_heads = 8;
  std::int64_t qkv_dim = 512;
  std::int64_t mlp_dim = 2048;
  double dropout_rate = 0.1;
  double attention_dropout_rate = 0.1;
  bool deterministic = false;
  nn::initializers::Initializer kernel_init = nn::initializers::xavier_uniform();
  nn::initializers::Initializer bias_init = nn::initializers::normal(1e-6);

  /// inputs (batch, length, emb_dim) -> the same shape.
  Array call(const Array& inputs, std::optional<Array> encoder_mask = std::nullopt) const {
    if (inputs.ndim() != 3) {
      throw Error("Encoder1DBlock: inputs must be (batch, length, features), got " +
                  inputs.shape().str() + nn::detail::module_path_suffix());
    }
    Array x = nn::LayerNorm{}(inputs);
    x = nn::MultiHeadDotProductAttention{.num_heads = num_heads,
                                         .qkv_features = qkv_dim,
                                         .broadcast_dropout = false,
                                         .dropout_rate = attention_dropout_rate,
                                         .deterministic = deterministic,
                                         .kernel_init = kernel_init,
                                         .bias_init = bias_init,
                                         .use_bias = false}(x, std::nullopt, std::nullopt,
                                                            encoder_mask);
    x = nn::Dropout{.rate = dropout_rate}(x, deterministic);
    x = x + inputs;
    Array y = nn::LayerNorm{}(x);
    y = MlpBlock{.mlp_dim = mlp_dim,
                 .dropout_rate = dropout_rate,
                 .deterministic = deterministic,
                 .kernel_init = kernel_init,
                 .bias_init = bias_init}(y);
    return x + y;
  }
};

}  // namespace loom::models
