// Normalization layers, as flax/linen/normalization.py: BatchNorm, LayerNorm, RMSNorm,
// GroupNorm, InstanceNorm.
//
//   nn::LayerNorm ln;                                   // epsilon 1e-6, last axis
//   loom::Tree v = ln.init(loom::random::key(0), x);    // params/{bias,scale}: float32[F]
//   loom::Array y = ln.apply(v, x);
//
//   nn::BatchNorm bn{.momentum = 0.9};
//   loom::Tree v = bn.init(key, x, /*use_running_average=*/false);  // stats not updated in init
//   auto [y, updates] = bn.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, x, false);
//   loom::Array y_eval = bn.apply(v, x, /*use_running_average=*/true);
//
// Numerics as Flax's _compute_stats / _normalize: the statistics are computed in
// promote(dtype or x.dtype, float32); with use_fast_variance, var = max(0, mean(x^2) - mean^2),
// else mean((x - mean)^2); then y = (x - mean) * (rsqrt(var + epsilon) * scale) + bias, cast to
// `dtype` when given, else to the promotion of x, scale and bias. Params are float32 by default
// (param_dtype). Axes may be negative; repeated axes count once (Flax deduplicates them); an
// out-of-range axis is a loom::Error naming the module path and the input shape. Every layer is
// differentiable (loom::grad). LayerNorm/RMSNorm whose reduction and feature axes are the same
// trailing axes, with x, params and dtype all one floating dtype (the Transformer case), run a
// fused kernel: one pass for the statistics, one for the output, one fused pass for the VJP.
//
// BatchNorm's axis_name averages the batch statistics over a named axis with lax::pmean (see
// loom/lax/collectives.hpp; loom::distributed::bind_axis_name binds one over processes), as
// Flax does; an unbound name is a loom::Error.
//
// Not yet: Flax's `mask=` call argument, axis_index_groups, force_float32_reductions=false.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "loom/nn/initializers.hpp"
#include "loom/nn/module.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::nn {

/// Batch normalization (flax.linen.BatchNorm). Variables: batch_stats/{mean (zeros), var
/// (ones)} and params/{scale, bias}, all shaped as the feature axes `axis`. With
/// use_running_average false the batch statistics over the other axes are used and, outside
/// init, the running averages become `momentum * ra + (1 - momentum) * batch_stat`: this needs
/// batch_stats mutable (apply_mutable with {"batch_stats"}), else Flax's
/// ModifyScopeVariableError. use_running_average comes from the field or the call argument,
/// exactly one of them (nn::merge_param).
///   auto bn = nn::BatchNorm{.use_running_average = !train, .momentum = 0.9};  x = bn(x);
struct BatchNorm : Module<BatchNorm> {
  std::optional<bool> use_running_average;
  numpy::Axes axis = -1;  // the feature axis (or axes)
  double momentum = 0.99;
  double epsilon = 1e-5;
  std::optional<DType> dtype;          // computation/result dtype; empty: inferred
  DType param_dtype = DType::float32;  // dtype of scale and bias
  bool use_bias = true;
  bool use_scale = true;
  initializers::Initializer bias_init = initializers::zeros_init();
  initializers::Initializer scale_init = initializers::ones_init();
  // Statistics averaged over this named axis (lax::pmean), outside init; e.g. "batch" bound by
  // loom::distributed::bind_axis_name("batch") for data parallelism across processes.
  std::optional<std::string> axis_name;
  bool use_fast_variance = true;
  bool operator==(const BatchNorm&) const = default;

  Array call(const Array& x, std::optional<bool> use_running_average = std::nullopt) const;
};

/// Layer normalization (flax.linen.LayerNorm): statistics over `reduction_axes` of each
/// example, scale/bias shaped as `feature_axes` (an empty Axes{} means every axis).
///   y = nn::LayerNorm{.epsilon = 1e-5}(x);
///   y = nn::LayerNorm{.reduction_axes = {1, 2}, .feature_axes = -1}(x);
struct LayerNorm : Module<LayerNorm> {
  double epsilon = 1e-6;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  bool use_bias = true;
  bool use_scale = true;
  initializers::Initializer bias_init = initializers::zeros_init();
  initializers::Initializer scale_init = initializers::ones_init();
  numpy::Axes reduction_axes = -1;
  numpy::Axes feature_axes = -1;
  bool use_fast_variance = true;
  bool operator==(const LayerNorm&) const = default;

  Array call(const Array& x) const;
};

/// RMS normalization (flax.linen.RMSNorm): y = x * rsqrt(mean(x^2) + epsilon) * scale, no
/// centring and no bias.   y = nn::RMSNorm{}(x);   // params/scale: float32[F]
struct RMSNorm : Module<RMSNorm> {
  double epsilon = 1e-6;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  bool use_scale = true;
  initializers::Initializer scale_init = initializers::ones_init();
  numpy::Axes reduction_axes = -1;
  numpy::Axes feature_axes = -1;
  bool use_fast_variance = true;  // unused without centring (as in Flax)
  bool operator==(const RMSNorm&) const = default;

  Array call(const Array& x) const;
};

/// Group normalization (flax.linen.GroupNorm): the last axis (channels) is split into
/// num_groups groups of group_size channels; statistics over each group and the reduction
/// axes, which default (empty optional, Flax's None) to every axis but the leading (batch)
/// one; scale/bias shaped (channels,). Exactly one of num_groups / group_size is set, and it
/// must divide the channels.
///   y = nn::GroupNorm{.num_groups = 8}(x);
///   y = nn::GroupNorm{.num_groups = std::nullopt, .group_size = 4}(x);
struct GroupNorm : Module<GroupNorm> {
  std::optional<std::int64_t> num_groups = 32;
  std::optional<std::int64_t> group_size;
  double epsilon = 1e-6;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  bool use_bias = true;
  bool use_scale = true;
  initializers::Initializer bias_init = initializers::zeros_init();
  initializers::Initializer scale_init = initializers::ones_init();
  std::optional<numpy::Axes> reduction_axes;  // must include the last axis
  bool use_fast_variance = true;
  bool operator==(const GroupNorm&) const = default;

  Array call(const Array& x) const;
};

/// Instance normalization (flax.linen.InstanceNorm): statistics over every axis except the
/// leading (batch) axis and the feature axes; scale/bias shaped as the feature axes, which may
/// not include axis 0.   y = nn::InstanceNorm{}(images);   // (N, H, W, C): over H, W
struct InstanceNorm : Module<InstanceNorm> {
  double epsilon = 1e-6;
  std::optional<DType> dtype;
  DType param_dtype = DType::float32;
  bool use_bias = true;
  bool use_scale = true;
  initializers::Initializer bias_init = initializers::zeros_init();
  initializers::Initializer scale_init = initializers::ones_init();
  numpy::Axes feature_axes = -1;
  bool use_fast_variance = true;
  bool operator==(const InstanceNorm&) const = default;

  Array call(const Array& x) const;
};

}  // namespace loom::nn

LOOM_NN_HASH_FIELDS(loom::nn::BatchNorm, m.use_running_average, m.axis, m.momentum, m.epsilon, m.dtype, m.param_dtype, m.use_bias, m.use_scale, m.bias_init, m.scale_init, m.axis_name, m.use_fast_variance)
LOOM_NN_HASH_FIELDS(loom::nn::LayerNorm, m.epsilon, m.dtype, m.param_dtype, m.use_bias, m.use_scale, m.bias_init, m.scale_init, m.reduction_axes, m.feature_axes, m.use_fast_variance)
LOOM_NN_HASH_FIELDS(loom::nn::RMSNorm, m.epsilon, m.dtype, m.param_dtype, m.use_scale, m.scale_init, m.reduction_axes, m.feature_axes, m.use_fast_variance)
LOOM_NN_HASH_FIELDS(loom::nn::GroupNorm, m.num_groups, m.group_size, m.epsilon, m.dtype, m.param_dtype, m.use_bias, m.use_scale, m.bias_init, m.scale_init, m.reduction_axes, m.use_fast_variance)
LOOM_NN_HASH_FIELDS(loom::nn::InstanceNorm, m.epsilon, m.dtype, m.param_dtype, m.use_bias, m.use_scale, m.bias_init, m.scale_init, m.feature_axes, m.use_fast_variance)
