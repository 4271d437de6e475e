// Attention, as flax/linen/attention.py: dot_product_attention(_weights), the
// MultiHeadDotProductAttention module (and its aliases MultiHeadAttention and SelfAttention),
// and the mask helpers make_attention_mask, make_causal_mask and combine_masks.
//
//   nn::MultiHeadDotProductAttention mha{.num_heads = 8, .qkv_features = 16};
//   loom::Array x = jnp::ones({4, 6, 5});                    // [batch, length, features]
//   loom::Tree v = mha.init(loom::random::key(0), x);
//   // params: query/key/value {kernel (5, 8, 2), bias (8, 2)}, out {kernel (8, 2, 5), bias (5,)}
//   loom::Array mask = nn::make_causal_mask(jnp::ones({4, 6}));   // (4, 1, 6, 6)
//   loom::Array y = mha.apply(v, x, std::nullopt, std::nullopt, mask);   // (4, 6, 5)
//
// Shapes: query/key/value are [batch..., length, num_heads, depth]; the weights are
// [batch..., num_heads, q_length, kv_length]. Scores and the weighted sum are batched GEMMs
// (numpy::einsum). Masks keep the positions where they are non-zero (bool or Flax's float
// 0/1 masks); masked scores become the dtype's lowest finite value before the softmax, so a
// row with every position masked attends uniformly, as in Flax.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "loom/nn/initializers.hpp"
#include "loom/nn/linear.hpp"
#include "loom/nn/module.hpp"
#include "loom/random.hpp"

namespace loom::nn {

/// The keyword arguments of dot_product_attention(_weights), with Flax's names and defaults.
///   nn::dot_product_attention(q, k, v, {.mask = m, .dropout_rng = key, .dropout_rate = 0.1});
struct AttentionOptions {
  std::optional<Array> bias;      // added to the scores; broadcastable to [batch..., h, q, kv]
  std::optional<Array> mask;      // false/0 masks a position out; broadcastable like bias
  bool broadcast_dropout = true;  // one dropout mask shared by batch and heads
  std::optional<random::Key> dropout_rng;  // needed when dropout is on
  double dropout_rate = 0.0;               // in [0, 1)
  bool deterministic = false;              // true: no dropout
  std::optional<DType> dtype;              // computation dtype; empty: promote the inputs
};

/// softmax(query @ key^T / sqrt(depth) + bias, masked) over kv_length, with dropout applied
/// unless deterministic or dropout_rate == 0 (keep / keep_prob, Flax's multiplier).
/// query [batch..., q, h, d], key [batch..., kv, h, d] -> [batch..., h, q, kv].
///   loom::Array w = nn::dot_product_attention_weights(q, k);
/// Ranks, batch dims, heads or depths that differ, ranks below 3, and bias or mask shapes that
/// do not broadcast to the weights are a loom::Error naming the shapes.
Array dot_product_attention_weights(const Array& query, const Array& key,
                                    const AttentionOptions& options = {});

/// The attention weights applied to value [batch..., kv, h, dv] -> [batch..., q, h, dv].
///   loom::Array y = nn::dot_product_attention(q, k, v, {.mask = nn::make_causal_mask(tokens)});
Array dot_product_attention(const Array& query, const Array& key, const Array& value,
                            const AttentionOptions& options = {});

// The fields of MultiHeadDotProductAttention and its aliases (one list, so the three stay the
// same aggregate; designated initializers need the fields in the struct itself).
#define LOOM_NN_MULTI_HEAD_ATTENTION_FIELDS                                               \
  std::int64_t num_heads = 0; /* required; divides qkv_features */                        \
  std::optional<DType> dtype; /* computation dtype; empty: promote */                     \
  DType param_dtype = DType::float32;                                                     \
  std::optional<std::int64_t> qkv_features; /* empty: inputs_q's feature size */          \
  std::optional<std::int64_t> out_features; /* empty: inputs_q's feature size */          \
  bool broadcast_dropout = true;                                                          \
  double dropout_rate = 0.0;                                                              \
  std::optional<bool> deterministic; /* here or at call time, when dropout_rate > 0 */    \
  initializers::Initializer kernel_init = initializers::lecun_normal();                   \
  std::optional<initializers::Initializer> out_kernel_init; /* empty: kernel_init */      \
  initializers::Initializer bias_init = initializers::zeros_init();                       \
  std::optional<initializers::Initializer> out_bias_init; /* empty: bias_init */          \
  bool use_bias = true;                                                                   \
  bool decode = false;       /* the autoregressive cache: not supported yet (an error) */ \
  bool normalize_qk = false; /* LayerNorm (no bias) on query and key: query_ln, key_ln */

/// flax.linen.MultiHeadDotProductAttention: DenseGeneral projections `query`, `key`, `value`
/// (features (num_heads, head_dim)), dot_product_attention, and the DenseGeneral `out` over
/// the last two axes. inputs_k defaults to inputs_q and inputs_v to inputs_k; `deterministic`
/// is merged (nn::merge_param) only when dropout_rate > 0, and the dropout key is dropout_rng
/// or make_rng("dropout"). sow_weights stores the weights in "intermediates" as
/// "attention_weights".
///   auto y = mha.apply(v, {.rngs = {{"dropout", k}}}, q, kv, std::nullopt, mask, false);
struct MultiHeadDotProductAttention : Module<MultiHeadDotProductAttention> {
  LOOM_NN_MULTI_HEAD_ATTENTION_FIELDS
  bool operator==(const MultiHeadDotProductAttention&) const = default;

  /// inputs [batch..., length, features] -> [batch..., q_length, out_features].
  Array call(const Array& inputs_q, std::optional<Array> inputs_k = std::nullopt,
             std::optional<Array> inputs_v = std::nullopt, std::optional<Array> mask = std::nullopt,
             std::optional<bool> deterministic = std::nullopt,
             std::optional<random::Key> dropout_rng = std::nullopt, bool sow_weights = false) const;
};

/// flax.linen.MultiHeadAttention: the same layer, auto-named "MultiHeadAttention_<k>".
struct MultiHeadAttention : Module<MultiHeadAttention> {
  LOOM_NN_MULTI_HEAD_ATTENTION_FIELDS
  bool operator==(const MultiHeadAttention&) const = default;

  Array call(const Array& inputs_q, std::optional<Array> inputs_k = std::nullopt,
             std::optional<Array> inputs_v = std::nullopt, std::optional<Array> mask = std::nullopt,
             std::optional<bool> deterministic = std::nullopt,
             std::optional<random::Key> dropout_rng = std::nullopt, bool sow_weights = false) const;
};

/// flax.linen.SelfAttention: multi-head attention of inputs_q with itself, auto-named
/// "SelfAttention_<k>"; the mask comes second.
///   loom::Array y = nn::SelfAttention{.num_heads = 2}(x, nn::make_causal_mask(tokens));
struct SelfAttention : Module<SelfAttention> {
  LOOM_NN_MULTI_HEAD_ATTENTION_FIELDS
  bool operator==(const SelfAttention&) const = default;

  Array call(const Array& inputs_q, std::optional<Array> mask = std::nullopt,
             std::optional<bool> deterministic = std::nullopt,
             std::optional<random::Key> dropout_rng = std::nullopt, bool sow_weights = false) const;
};

#undef LOOM_NN_MULTI_HEAD_ATTENTION_FIELDS

/// pairwise_fn(query_input[..., :, None], key_input[..., None, :]) with a heads axis of size 1
/// inserted before the last two and extra_batch_dims leading axes of size 1, as `dtype`:
/// [batch..., len_q], [batch..., len_kv] -> [1 x extra..., batch..., 1, len_q, len_kv].
/// pairwise_fn defaults to multiply (Flax's jnp.multiply): padding masks from 0/1 inputs.
///   loom::Array m = nn::make_attention_mask(tokens > 0, tokens > 0);
///   loom::Array c = nn::make_attention_mask(pos, pos, [](auto& a, auto& b) { return a >= b; });
using PairwiseFn = std::function<Array(const Array& query, const Array& key)>;
Array make_attention_mask(const Array& query_input, const Array& key_input,
                          const PairwiseFn& pairwise_fn = nullptr, int extra_batch_dims = 0,
                          DType dtype = DType::float32);

/// The causal mask of x [batch..., len]: [batch..., 1, len, len], true where the key position
/// is at or before the query position (make_attention_mask of arange with greater_equal).
///   loom::Array m = nn::make_causal_mask(jnp::ones({3, 16}));   // (3, 1, 16, 16)
Array make_causal_mask(const Array& x, int extra_batch_dims = 0, DType dtype = DType::float32);

/// The logical and of the masks that are set, as `dtype`; nullopt when none is. The masks
/// must have the same rank (and broadcast together).
///   auto m = nn::combine_masks({padding_mask, causal_mask});
std::optional<Array> combine_masks(const std::vector<std::optional<Array>>& masks,
                                   DType dtype = DType::float32);

}  // namespace loom::nn

LOOM_NN_HASH_FIELDS(loom::nn::MultiHeadDotProductAttention, m.num_heads, m.dtype, m.param_dtype, m.qkv_features, m.out_features, m.broadcast_dropout, m.dropout_rate, m.deterministic, m.kernel_init, m.out_kernel_init, m.bias_init, m.out_bias_init, m.use_bias, m.decode, m.normalize_qk)
LOOM_NN_HASH_FIELDS(loom::nn::MultiHeadAttention, m.num_heads, m.dtype, m.param_dtype, m.qkv_features, m.out_features, m.broadcast_dropout, m.dropout_rate, m.deterministic, m.kernel_init, m.out_kernel_init, m.bias_init, m.out_bias_init, m.use_bias, m.decode, m.normalize_qk)
LOOM_NN_HASH_FIELDS(loom::nn::SelfAttention, m.num_heads, m.dtype, m.param_dtype, m.qkv_features, m.out_features, m.broadcast_dropout, m.dropout_rate, m.deterministic, m.kernel_init, m.out_kernel_init, m.bias_init, m.out_bias_init, m.use_bias, m.decode, m.normalize_qk)
