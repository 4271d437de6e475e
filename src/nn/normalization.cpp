// Normalization layers, as flax/linen/normalization.py (_compute_stats and _normalize shared by
// all of them). Built from differentiable jax.numpy ops, so loom::grad goes through them.
#include "loom/nn/normalization.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"

namespace loom::nn {
namespace {

std::string axes_text(const numpy::Axes& axes) {
  if (!axes.axes.has_value()) return "None";
  std::string s = "(";
  for (std::size_t i = 0; i < axes.axes->size(); ++i) {
    s += (i ? ", " : "") + std::to_string((*axes.axes)[i]);
  }
  return s + (axes.axes->size() == 1 ? ",)" : ")");
}

void check_input(const char* layer, const Array& x) {
  if (!x.valid())
    throw Error(std::string(layer) + ": got an empty array" + detail::module_path_suffix());
}

// Flax's _canonicalize_axes: non-negative, deduplicated, sorted; nullopt means every axis.
// An axis outside [-ndim, ndim) is a loom::Error.
std::vector<int> canonicalize_axes(const char* layer, const char* field, const Shape& shape,
                                   const numpy::Axes& axes) {
  const int ndim = shape.rank();
  std::vector<int> out;
  if (!axes.axes.has_value()) {
    for (int i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int a : *axes.axes) {
    if (a < -ndim || a >= ndim) {
      throw Error(std::string(layer) + ": " + field + " " + axes_text(axes) +
                  " is out of range for an input of shape " + shape.str() + " (rank " +
                  std::to_string(ndim) + ")" + detail::module_path_suffix());
    }
    out.push_back(a < 0 ? a + ndim : a);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct Stats {
  Array mean, var;
};

// Flax's _compute_stats (force_float32_reductions, no mask, no axis_name): mean and variance
// over `axes` in promote(dtype or x.dtype, float32).
Stats compute_stats(const Array& x, const std::vector<int>& axes, std::optional<DType> dtype,
                    bool use_mean, bool use_fast_variance) {
  const DType dt = promote_types(dtype.value_or(x.dtype()), DType::float32);
  const Array xs = x.dtype() == dt ? x : x.astype(dt);
  const numpy::Axes ax(axes);
  if (!use_mean) {
    Array var = numpy::mean(numpy::square(xs), ax);
    return {numpy::zeros_like(var), var};
  }
  Array mu = numpy::mean(xs, ax);
  Array var;
  if (use_fast_variance) {
    Array mu2 = numpy::mean(numpy::square(xs), ax);
    Array d = mu2 - numpy::square(mu);
    var = numpy::maximum(numpy::weak_scalar(0.0, d), d);
  } else {
    var = numpy::mean(numpy::square(xs - numpy::expand_dims(mu, ax)), ax);
  }
  return {mu, var};
}

struct NormalizeOptions {
  std::optional<DType> dtype;
  DType param_dtype;
  double epsilon;
  bool use_bias;
  bool use_scale;
  const initializers::Initializer* bias_init;
  const initializers::Initializer* scale_init;
  bool centred = true;               // false (RMSNorm): the mean is zero, x - 0 is skipped
  std::optional<Shape> param_shape;  // GroupNorm: (channels,) instead of the feature shape
};

// Flax's _normalize: y = (x - mean) * (rsqrt(var + eps) * scale) + bias, params shaped as the
// feature axes and created in `scope` (scale first, then bias, as Flax's key order).
Array normalize(core::Scope& scope, const Array& x, const Array& mean, const Array& var,
                const std::vector<int>& reduction_axes, const std::vector<int>& feature_axes,
                const NormalizeOptions& o) {
  const int ndim = x.ndim();
  std::vector<std::int64_t> feature_shape(static_cast<std::size_t>(ndim), 1);
  Shape reduced_feature_shape;
  for (int ax : feature_axes) {
    feature_shape[static_cast<std::size_t>(ax)] = x.shape()[ax];
    reduced_feature_shape.push_back(x.shape()[ax]);
  }
  if (o.param_shape.has_value()) reduced_feature_shape = *o.param_shape;
  const numpy::Axes red(reduction_axes);
  const Array mean_e = numpy::expand_dims(mean, red);
  const Array var_e = numpy::expand_dims(var, red);
  Array y;
  if (o.centred) {
    y = x - mean_e;
  } else {
    const DType dt = promote_types(x.dtype(), mean.dtype());
    y = x.dtype() == dt ? x : x.astype(dt);
  }
  Array mul = numpy::rsqrt(var_e + o.epsilon);
  DType out = x.dtype();
  if (o.use_scale) {
    Array scale = scope.param("scale", *o.scale_init, reduced_feature_shape, o.param_dtype);
    out = promote_types(out, scale.dtype());
    mul = mul * numpy::reshape(scale, feature_shape);
  }
  y = y * mul;
  if (o.use_bias) {
    Array bias = scope.param("bias", *o.bias_init, reduced_feature_shape, o.param_dtype);
    out = promote_types(out, bias.dtype());
    y = y + numpy::reshape(bias, feature_shape);
  }
  // Flax's canonicalize_dtype(x, scale, bias, dtype=dtype), inexact.
  if (o.dtype.has_value()) {
    out = *o.dtype;
  } else if (!is_floating(out)) {
    out = promote_types(out, DType::float32);
  }
  return y.dtype() == out ? y : y.astype(out);
}

std::vector<int> complement(int ndim, const std::vector<int>& axes, int from = 0) {
  std::vector<int> out;
  for (int i = from; i < ndim; ++i) {
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) out.push_back(i);
  }
  return out;
}

}  // namespace

Array BatchNorm::call(const Array& x, std::optional<bool> use_running_average_arg) const {
  const bool use_ra =
      merge_param("use_running_average", use_running_average, use_running_average_arg);
  check_input("BatchNorm", x);
  const std::vector<int> feature_axes = canonicalize_axes("BatchNorm", "axis", x.shape(), axis);
  const std::vector<int> reduction_axes = complement(x.ndim(), feature_axes);
  Shape feature_shape;
  for (int ax : feature_axes) feature_shape.push_back(x.shape()[ax]);

  Variable ra_mean =
      variable("batch_stats", "mean", [&] { return Tree(numpy::zeros(feature_shape)); });
  Variable ra_var =
      variable("batch_stats", "var", [&] { return Tree(numpy::ones(feature_shape)); });

  Array mean, var;
  if (use_ra) {
    mean = ra_mean.value();
    var = ra_var.value();
    if (mean.shape() != feature_shape || var.shape() != feature_shape) {
      throw Error("BatchNorm: batch_stats mean " + mean.shape().str() + " and var " +
                  var.shape().str() + " do not match the feature shape " + feature_shape.str() +
                  " of an input of shape " + x.shape().str() + " (axis " + axes_text(axis) + ")" +
                  detail::module_path_suffix());
    }
  } else {
    const bool initializing = is_initializing();
    if (axis_name.has_value() && !initializing) {
      throw Error("BatchNorm: axis_name \"" + *axis_name +
                  "\" (statistics across devices) is not supported yet; leave it unset" +
                  detail::module_path_suffix());
    }
    Stats s = compute_stats(x, reduction_axes, dtype, true, use_fast_variance);
    mean = s.mean;
    var = s.var;
    if (!initializing) {
      const Array old_mean = ra_mean.value(), old_var = ra_var.value();
      if (old_mean.shape() != feature_shape || old_var.shape() != feature_shape) {
        throw Error("BatchNorm: batch_stats mean " + old_mean.shape().str() + " and var " +
                    old_var.shape().str() + " do not match the feature shape " +
                    feature_shape.str() + " of an input of shape " + x.shape().str() +
                    detail::module_path_suffix());
      }
      // Written one after the other as Flax does: an immutable batch_stats fails on "mean".
      ra_mean.set_value(momentum * old_mean + (1.0 - momentum) * mean);
      ra_var.set_value(momentum * old_var + (1.0 - momentum) * var);
    }
  }
  return normalize(scope("param"), x, mean, var, reduction_axes, feature_axes,
                   {.dtype = dtype,
                    .param_dtype = param_dtype,
                    .epsilon = epsilon,
                    .use_bias = use_bias,
                    .use_scale = use_scale,
                    .bias_init = &bias_init,
                    .scale_init = &scale_init});
}

Array LayerNorm::call(const Array& x) const {
  check_input("LayerNorm", x);
  const auto red = canonicalize_axes("LayerNorm", "reduction_axes", x.shape(), reduction_axes);
  const auto feat = canonicalize_axes("LayerNorm", "feature_axes", x.shape(), feature_axes);
  Stats s = compute_stats(x, red, dtype, true, use_fast_variance);
  return normalize(scope("param"), x, s.mean, s.var, red, feat,
                   {.dtype = dtype,
                    .param_dtype = param_dtype,
                    .epsilon = epsilon,
                    .use_bias = use_bias,
                    .use_scale = use_scale,
                    .bias_init = &bias_init,
                    .scale_init = &scale_init});
}

Array RMSNorm::call(const Array& x) const {
  check_input("RMSNorm", x);
  const auto red = canonicalize_axes("RMSNorm", "reduction_axes", x.shape(), reduction_axes);
  const auto feat = canonicalize_axes("RMSNorm", "feature_axes", x.shape(), feature_axes);
  Stats s = compute_stats(x, red, dtype, false, use_fast_variance);
  return normalize(scope("param"), x, s.mean, s.var, red, feat,
                   {.dtype = dtype,
                    .param_dtype = param_dtype,
                    .epsilon = epsilon,
                    .use_bias = false,
                    .use_scale = use_scale,
                    .bias_init = nullptr,
                    .scale_init = &scale_init,
                    .centred = false});
}

Array GroupNorm::call(const Array& x) const {
  check_input("GroupNorm", x);
  const int ndim = x.ndim();
  if (ndim == 0) {
    throw Error("GroupNorm: the input needs a channel (last) axis, got shape " + x.shape().str() +
                detail::module_path_suffix());
  }
  numpy::Axes axes_given;
  if (reduction_axes.has_value()) {
    axes_given = *reduction_axes;
  } else {
    std::vector<int> d;
    for (int i = 1; i < ndim - 1; ++i) d.push_back(i);
    d.push_back(-1);
    axes_given = numpy::Axes(d);
  }
  const auto red = canonicalize_axes("GroupNorm", "reduction_axes", x.shape(), axes_given);
  if (red.empty() || red.back() != ndim - 1) {
    throw Error("GroupNorm: the reduction axes " + axes_text(axes_given) +
                " must include the final dimension as this is assumed to be the feature axis "
                "(input shape " +
                x.shape().str() + ")" + detail::module_path_suffix());
  }
  if (num_groups.has_value() == group_size.has_value()) {
    throw Error(
        "GroupNorm: either `num_groups` or `group_size` should be specified. If `group_size` "
        "is to be specified, pass `.num_groups = std::nullopt` to override the default "
        "`num_groups` value of 32" +
        detail::module_path_suffix());
  }
  const std::int64_t channels = x.shape().back();
  std::int64_t groups;
  if (group_size.has_value()) {
    if (*group_size <= 0 || channels % *group_size != 0) {
      throw Error("GroupNorm: number of channels (" + std::to_string(channels) +
                  ") is not multiple of the group size (" + std::to_string(*group_size) +
                  "); input shape " + x.shape().str() + detail::module_path_suffix());
    }
    groups = channels / *group_size;
  } else {
    groups = *num_groups;
  }
  if (groups <= 0 || channels % groups != 0) {
    throw Error("GroupNorm: number of groups (" + std::to_string(groups) +
                ") does not divide the number of channels (" + std::to_string(channels) +
                "); input shape " + x.shape().str() + detail::module_path_suffix());
  }
  const std::int64_t gsize = channels / groups;
  // Statistics on the (..., groups, group_size) view; broadcasting them against that view is
  // elementwise the same as Flax's jnp.repeat of the per-group statistics over the channels.
  std::vector<std::int64_t> group_shape(x.shape().begin(), x.shape().end() - 1);
  group_shape.push_back(groups);
  group_shape.push_back(gsize);
  const Array xg = numpy::reshape(x, group_shape);
  std::vector<int> stat_axes(red.begin(), red.end() - 1);  // the non-channel reduction axes
  std::vector<int> group_axes = stat_axes;
  group_axes.push_back(ndim);  // the group_size axis of the view
  Stats s = compute_stats(xg, group_axes, dtype, true, use_fast_variance);
  // scale/bias are (channels,) as in Flax, seen as (groups, group_size) on the view.
  const Array y = normalize(scope("param"), xg, s.mean, s.var, group_axes, {ndim - 1, ndim},
                            {.dtype = dtype,
                             .param_dtype = param_dtype,
                             .epsilon = epsilon,
                             .use_bias = use_bias,
                             .use_scale = use_scale,
                             .bias_init = &bias_init,
                             .scale_init = &scale_init,
                             .param_shape = Shape{channels}});
  return numpy::reshape(y, std::vector<std::int64_t>(x.shape().begin(), x.shape().end()));
}

Array InstanceNorm::call(const Array& x) const {
  check_input("InstanceNorm", x);
  const auto feat = canonicalize_axes("InstanceNorm", "feature_axes", x.shape(), feature_axes);
  if (!feat.empty() && feat.front() == 0) {
    throw Error(
        "InstanceNorm: the channel axes cannot include the leading dimension as this is "
        "assumed to be the batch axis; feature_axes " +
        axes_text(feature_axes) + ", input shape " + x.shape().str() +
        detail::module_path_suffix());
  }
  const auto red = complement(x.ndim(), feat, 1);
  Stats s = compute_stats(x, red, dtype, true, use_fast_variance);
  return normalize(scope("param"), x, s.mean, s.var, red, feat,
                   {.dtype = dtype,
                    .param_dtype = param_dtype,
                    .epsilon = epsilon,
                    .use_bias = use_bias,
                    .use_scale = use_scale,
                    .bias_init = &bias_init,
                    .scale_init = &scale_init});
}

}  // namespace loom::nn
