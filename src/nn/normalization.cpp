// Normalization layers, as flax/linen/normalization.py (_compute_stats and _normalize shared by
// all of them). Built from differentiable jax.numpy ops, so loom::grad goes through them.
#include "loom/nn/normalization.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "loom/lax/collectives.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"
#include "normalization_rows.hpp"

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

// Flax's _compute_stats (force_float32_reductions, no mask): mean and variance over `axes` in
// promote(dtype or x.dtype, float32); with an axis name, each local mean is lax.pmean'ed over
// it (mean and mean of squares stacked into one collective, as Flax does).
Stats compute_stats(const Array& x, const std::vector<int>& axes, std::optional<DType> dtype,
                    bool use_mean, bool use_fast_variance,
                    const std::optional<std::string>& axis_name = std::nullopt) {
  const DType dt = promote_types(dtype.value_or(x.dtype()), DType::float32);
  const Array xs = x.dtype() == dt ? x : x.astype(dt);
  const numpy::Axes ax(axes);
  auto dmean = [&](const Array& a) {
    Array m = numpy::mean(a, ax);
    return axis_name ? lax::pmean(m, *axis_name) : m;
  };
  if (!use_mean) {
    Array var = dmean(numpy::square(xs));
    return {numpy::zeros_like(var), var};
  }
  Array mu, var;
  if (use_fast_variance) {
    Array mu2;
    if (axis_name) {
      Array both = lax::pmean(
          numpy::stack({numpy::mean(xs, ax), numpy::mean(numpy::square(xs), ax)}), *axis_name);
      mu = numpy::index(both, 0);
      mu2 = numpy::index(both, 1);
    } else {
      mu = numpy::mean(xs, ax);
      mu2 = numpy::mean(numpy::square(xs), ax);
    }
    Array d = mu2 - numpy::square(mu);
    var = numpy::maximum(numpy::weak_scalar(0.0, d), d);
  } else {
    mu = dmean(xs);
    var = dmean(numpy::square(xs - numpy::expand_dims(mu, ax)));
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

// scale then bias (Flax's creation order, hence the keys), shaped as the feature axes.
struct Params {
  Array scale, bias;
};
Params make_params(core::Scope& scope, const Shape& shape, const NormalizeOptions& o) {
  Params p;
  if (o.use_scale) p.scale = scope.param("scale", *o.scale_init, shape, o.param_dtype);
  if (o.use_bias) p.bias = scope.param("bias", *o.bias_init, shape, o.param_dtype);
  return p;
}

Shape feature_dims(const Shape& x, const std::vector<int>& feature_axes) {
  Shape s;
  for (int ax : feature_axes) s.push_back(x[ax]);
  return s;
}

// Flax's _normalize: y = (x - mean) * (rsqrt(var + eps) * scale) + bias, params shaped as the
// feature axes.
Array normalize(const Array& x, const Array& mean, const Array& var, const Params& p,
                const std::vector<int>& reduction_axes, const std::vector<int>& feature_axes,
                const NormalizeOptions& o) {
  const int ndim = x.ndim();
  std::vector<std::int64_t> feature_shape(static_cast<std::size_t>(ndim), 1);
  for (int ax : feature_axes) feature_shape[static_cast<std::size_t>(ax)] = x.shape()[ax];
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
  if (p.scale.valid()) {
    out = promote_types(out, p.scale.dtype());
    mul = mul * numpy::reshape(p.scale, feature_shape);
  }
  y = y * mul;
  if (p.bias.valid()) {
    out = promote_types(out, p.bias.dtype());
    y = y + numpy::reshape(p.bias, feature_shape);
  }
  // Flax's canonicalize_dtype(x, scale, bias, dtype=dtype), inexact.
  if (o.dtype.has_value()) {
    out = *o.dtype;
  } else if (!is_floating(out)) {
    out = promote_types(out, DType::float32);
  }
  return y.dtype() == out ? y : y.astype(out);
}

// LayerNorm / RMSNorm: the fused kernel when the statistics and the params cover the same
// trailing axes and everything is in x's (floating) dtype; else the composed ops.
Array layer_or_rms(core::Scope& scope, const Array& x, const std::vector<int>& red,
                   const std::vector<int>& feat, bool use_fast_variance,
                   const NormalizeOptions& o) {
  const Params p = make_params(scope, feature_dims(x.shape(), feat), o);
  const int ndim = x.ndim();
  bool trailing = !red.empty() && red == feat && red.back() == ndim - 1 &&
                  red.front() == ndim - static_cast<int>(red.size());
  std::int64_t n = 1;
  for (int ax : red) n *= x.shape()[ax];
  const DType dt = x.dtype();
  if (trailing && n > 0 && is_floating(dt) && (!o.centred || use_fast_variance) &&
      o.dtype.value_or(dt) == dt && (!p.scale.valid() || p.scale.dtype() == dt) &&
      (!p.bias.valid() || p.bias.dtype() == dt)) {
    return detail::normalize_rows(x, p.scale, p.bias, n, o.epsilon, o.centred);
  }
  Stats s = compute_stats(x, red, o.dtype, o.centred, use_fast_variance);
  return normalize(x, s.mean, s.var, p, red, feat, o);
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
    if (axis_name.has_value() && !initializing && !lax::axis_bound(*axis_name)) {
      throw Error("BatchNorm: axis_name \"" + *axis_name +
                  "\" is an unbound axis name (bind it, e.g. loom::distributed::bind_axis_name)" +
                  detail::module_path_suffix());
    }
    // Flax drops axis_name during init: no collective runs before every member has variables.
    Stats s = compute_stats(x, reduction_axes, dtype, true, use_fast_variance,
                            initializing ? std::nullopt : axis_name);
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
  const NormalizeOptions o{.dtype = dtype,
                           .param_dtype = param_dtype,
                           .epsilon = epsilon,
                           .use_bias = use_bias,
                           .use_scale = use_scale,
                           .bias_init = &bias_init,
                           .scale_init = &scale_init};
  return normalize(x, mean, var, make_params(scope("param"), feature_shape, o), reduction_axes,
                   feature_axes, o);
}

Array LayerNorm::call(const Array& x) const {
  check_input("LayerNorm", x);
  const auto red = canonicalize_axes("LayerNorm", "reduction_axes", x.shape(), reduction_axes);
  const auto feat = canonicalize_axes("LayerNorm", "feature_axes", x.shape(), feature_axes);
  return layer_or_rms(scope("param"), x, red, feat, use_fast_variance,
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
  return layer_or_rms(scope("param"), x, red, feat, use_fast_variance,
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
  const NormalizeOptions o{.dtype = dtype,
                           .param_dtype = param_dtype,
                           .epsilon = epsilon,
                           .use_bias = use_bias,
                           .use_scale = use_scale,
                           .bias_init = &bias_init,
                           .scale_init = &scale_init};
  const Array y = normalize(xg, s.mean, s.var, make_params(scope("param"), Shape{channels}, o),
                            group_axes, {ndim - 1, ndim}, o);
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
  const NormalizeOptions o{.dtype = dtype,
                           .param_dtype = param_dtype,
                           .epsilon = epsilon,
                           .use_bias = use_bias,
                           .use_scale = use_scale,
                           .bias_init = &bias_init,
                           .scale_init = &scale_init};
  return normalize(x, s.mean, s.var, make_params(scope("param"), feature_dims(x.shape(), feat), o),
                   red, feat, o);
}

}  // namespace loom::nn
