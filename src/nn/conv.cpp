// nn::Conv and nn::ConvTranspose, as flax/linen/linear.py (_Conv, ConvTranspose).
#include "loom/nn/conv.hpp"

#include <string>

#include "loom/core/errors.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"

namespace loom::nn {
namespace {

std::string ints_str(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

std::string shape_of(const Array& x) {
  return x.valid() ? "shape " + x.shape().str() : std::string("an empty array");
}

// Flax's maybe_broadcast: empty (None) -> 1s, one entry (an int) -> that entry on every dim.
// Strides, dilations and kernel sizes: positive and at most 2^31, so the padding arithmetic
// below ((kernel - 1) * dilation, periods) stays inside int64 before lax validates the rest.
constexpr std::int64_t kMaxWindow = std::int64_t{1} << 31;
void check_positive(const std::vector<std::int64_t>& v, const char* op, const char* what) {
  for (std::int64_t k : v) {
    if (k < 1 || k > kMaxWindow) {
      throw Error(std::string(op) + ": " + what + " " + ints_str(v) +
                  " must be positive (and at most 2^31)" + detail::module_path_suffix());
    }
  }
}

std::vector<std::int64_t> broadcast_arg(const std::vector<std::int64_t>& v, std::size_t n,
                                        const char* op, const char* what) {
  check_positive(v, op, what);
  if (v.empty()) return std::vector<std::int64_t>(n, 1);
  if (v.size() == 1) return std::vector<std::int64_t>(n, v[0]);
  if (v.size() != n) {
    throw Error(std::string(op) + ": " + what + " " + ints_str(v) + " must have 1 or " +
                std::to_string(n) + " entries (one per spatial dimension of kernel_size)" +
                detail::module_path_suffix());
  }
  return v;
}

// The checks both layers share; returns the number of leading batch dims.
int check_inputs(const char* op, std::int64_t features, const std::vector<std::int64_t>& ks,
                 const Array& inputs) {
  if (features <= 0) {
    throw Error(std::string(op) + ": features must be positive, got " + std::to_string(features) +
                detail::module_path_suffix());
  }
  if (ks.empty() || ks.size() > 3) {
    throw Error(std::string(op) + ": kernel_size " + ints_str(ks) +
                " must have 1 to 3 entries (one per spatial dimension)" +
                detail::module_path_suffix());
  }
  check_positive(ks, op, "kernel_size");
  const int need = int(ks.size()) + 1;
  if (!inputs.valid() || inputs.ndim() < need) {
    throw Error(std::string(op) + ": kernel_size " + ints_str(ks) + " needs inputs (*batch_dims, " +
                std::to_string(ks.size()) + " spatial dims, features) of rank >= " +
                std::to_string(need) + ", got " + shape_of(inputs) + detail::module_path_suffix());
  }
  return inputs.ndim() - need;
}

// (*batch, rest...) -> (prod(batch), rest...); returns the batch shape for restore().
Array flatten_batch(const Array& x, int num_batch, Shape& batch_shape) {
  std::vector<std::int64_t> flat{1};
  for (int i = 0; i < x.ndim(); ++i) {
    if (i < num_batch) {
      batch_shape.push_back(x.shape()[i]);
      flat[0] *= x.shape()[i];
    } else {
      flat.push_back(x.shape()[i]);
    }
  }
  return num_batch == 1 ? x : numpy::reshape(x, flat);
}

Array restore_batch(const Array& y, int num_batch, const Shape& batch_shape) {
  if (num_batch == 1) return y;
  std::vector<std::int64_t> shape = batch_shape.to_vector();
  for (int i = 1; i < y.ndim(); ++i) shape.push_back(y.shape()[i]);
  return numpy::reshape(y, shape);
}

// np.pad(x, ..., mode="wrap" or "reflect") along `axis` by gathering indices (differentiable).
Array index_pad(const Array& x, int axis, std::int64_t lo, std::int64_t hi, bool reflect,
                const char* op) {
  if (lo == 0 && hi == 0) return x;
  const std::int64_t n = x.shape()[axis];
  if (n == 0) {
    throw Error(std::string(op) + ": cannot pad an empty spatial dimension of inputs " +
                x.shape().str() + (reflect ? " with REFLECT" : " with CIRCULAR") +
                detail::module_path_suffix());
  }
  std::vector<std::int32_t> idx;
  idx.reserve(std::size_t(n + lo + hi));
  const std::int64_t period = reflect ? 2 * (n - 1) : n;
  for (std::int64_t i = -lo; i < n + hi; ++i) {
    std::int64_t m = period == 0 ? 0 : ((i % period) + period) % period;
    if (reflect && m >= n) m = period - m;
    idx.push_back(std::int32_t(m));
  }
  return numpy::take(x, Array(idx, Shape{std::int64_t(idx.size())}, DType::int32), axis);
}

void check_mask(const char* op, const std::optional<Array>& mask, const Shape& kernel_shape) {
  if (mask.has_value() && (!mask->valid() || mask->shape() != kernel_shape)) {
    throw Error(std::string(op) + ": Mask needs to have the same shape as weights. Shapes are: " +
                (mask->valid() ? mask->shape().str() : std::string("(empty)")) + ", " +
                kernel_shape.str() + detail::module_path_suffix());
  }
}

// Flax's promote_dtype: everything in `dtype`, else in the promotion of inputs and params.
DType compute_dtype(const std::optional<DType>& dtype, const Array& x, const Array& kernel) {
  return dtype.value_or(promote_types(x.dtype(), kernel.dtype()));
}

Array as(const Array& a, DType dt) {
  return a.dtype() == dt ? a : a.astype(dt);
}

}  // namespace

std::string PaddingLike::str() const {
  switch (kind) {
    case Kind::string:
      return "'" + name + "'";
    case Kind::integer:
      return std::to_string(value);
    case Kind::sequence: {
      std::string s = "(";
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        s += (i ? ", (" : "(") + std::to_string(pairs[i].low) + ", " +
             std::to_string(pairs[i].high) + ")";
      }
      return s + (pairs.size() == 1 ? ",)" : ")");
    }
  }
  return "?";
}

lax::Padding canonicalize_padding(const PaddingLike& padding, std::size_t rank, const char* op) {
  if (padding.is("SAME")) return lax::Padding::same();
  if (padding.is("VALID")) return lax::Padding::valid();
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  if (padding.kind == PaddingLike::Kind::integer) {
    pairs.assign(rank, {padding.value, padding.value});
  } else if (padding.kind == PaddingLike::Kind::sequence && padding.pairs.size() == rank) {
    for (const PadPair& p : padding.pairs) pairs.emplace_back(p.low, p.high);
  } else {
    throw Error(std::string(op) + ": Invalid padding format: " + padding.str() +
                ", should be 'SAME', 'VALID', an int, or a sequence of len " +
                std::to_string(rank) + " where each element is an int or pair of ints" +
                detail::module_path_suffix());
  }
  return lax::Padding::explicit_(std::move(pairs));
}

Array Conv::call(const Array& inputs) const {
  const int num_batch = check_inputs("Conv", features, kernel_size, inputs);
  const std::size_t ns = kernel_size.size();
  Shape batch_shape;
  Array x = flatten_batch(inputs, num_batch, batch_shape);
  const auto strides_ = broadcast_arg(strides, ns, "Conv", "strides");
  const auto in_dil = broadcast_arg(input_dilation, ns, "Conv", "input_dilation");
  const auto k_dil = broadcast_arg(kernel_dilation, ns, "Conv", "kernel_dilation");

  lax::Padding pad = lax::Padding::valid();
  if (padding.is("CIRCULAR") || padding.is("REFLECT")) {
    const bool reflect = padding.is("REFLECT");
    for (std::size_t i = 0; i < ns; ++i) {
      const std::int64_t kd = (kernel_size[i] - 1) * k_dil[i] + 1;
      x = index_pad(x, int(i) + 1, (kd - 1) / 2, kd / 2, reflect, "Conv");
    }
  } else if (padding.is("CAUSAL")) {
    if (ns != 1) {
      throw Error("Conv: Causal padding is only implemented for 1D convolutions; kernel_size is " +
                  ints_str(kernel_size) + detail::module_path_suffix());
    }
    x = numpy::pad(x, {{0, 0}, {k_dil[0] * (kernel_size[0] - 1), 0}, {0, 0}});
  } else {
    pad = canonicalize_padding(padding, ns, "Conv");
  }

  const std::int64_t in_features = x.shape().back(), G = feature_group_count;
  if (G < 1 || in_features % G != 0 || features % G != 0) {
    throw Error("Conv: feature_group_count " + std::to_string(G) +
                " must be positive and divide both the input features (" +
                std::to_string(in_features) + ", inputs " + inputs.shape().str() +
                ") and features (" + std::to_string(features) + ")" + detail::module_path_suffix());
  }
  Shape kernel_shape;
  for (std::int64_t k : kernel_size) kernel_shape.push_back(k);
  kernel_shape.push_back(in_features / G);
  kernel_shape.push_back(features);
  check_mask("Conv", mask, kernel_shape);

  Array kernel = param("kernel", kernel_init, kernel_shape, param_dtype);
  if (mask.has_value()) kernel = kernel * *mask;
  Array bias;
  if (use_bias) bias = param("bias", bias_init, Shape{features}, param_dtype);
  const DType dt = compute_dtype(dtype, x, kernel);
  Array y;
  try {
    // With a bias: one primitive (oneDNN adds it inside the conv: no second pass over y).
    y = use_bias
            ? lax::conv_general_dilated_bias(as(x, dt), as(kernel, dt), as(bias, dt), strides_, pad,
                                             in_dil, k_dil, G)
            : lax::conv_general_dilated(as(x, dt), as(kernel, dt), strides_, pad, in_dil, k_dil, G);
  } catch (const core::FlaxError&) {
    throw;
  } catch (const Error& e) {
    throw Error(std::string("Conv: ") + e.what() + detail::module_path_suffix());
  }
  return restore_batch(y, num_batch, batch_shape);
}

Array ConvTranspose::call(const Array& inputs) const {
  const int num_batch = check_inputs("ConvTranspose", features, kernel_size, inputs);
  const std::size_t ns = kernel_size.size();
  Shape batch_shape;
  Array x = flatten_batch(inputs, num_batch, batch_shape);
  const auto strides_ = broadcast_arg(strides, ns, "ConvTranspose", "strides");
  const auto k_dil = broadcast_arg(kernel_dilation, ns, "ConvTranspose", "kernel_dilation");

  const std::int64_t in_features = x.shape().back();
  Shape kernel_shape;
  for (std::int64_t k : kernel_size) kernel_shape.push_back(k);
  kernel_shape.push_back(transpose_kernel ? features : in_features);
  kernel_shape.push_back(transpose_kernel ? in_features : features);
  check_mask("ConvTranspose", mask, kernel_shape);
  Array kernel = param("kernel", kernel_init, kernel_shape, param_dtype);
  if (mask.has_value()) kernel = kernel * *mask;

  const bool circular = padding.is("CIRCULAR");
  const lax::Padding pad =
      circular ? lax::Padding::valid() : canonicalize_padding(padding, ns, "ConvTranspose");
  Array bias;
  if (use_bias) bias = param("bias", bias_init, Shape{features}, param_dtype);
  const DType dt = compute_dtype(dtype, x, kernel);
  Array y;
  try {
    y = lax::conv_transpose(as(x, dt), as(kernel, dt), strides_, pad, k_dil, transpose_kernel);
  } catch (const core::FlaxError&) {
    throw;
  } catch (const Error& e) {
    throw Error(std::string("ConvTranspose: ") + e.what() + detail::module_path_suffix());
  }

  if (circular) {
    // Pad each spatial dim of y to a whole number of periods (input size * stride), placed so the
    // input's start sits on a period boundary, then fold the periods onto each other by summing.
    std::vector<std::pair<std::int64_t, std::int64_t>> total{{0, 0}};
    std::vector<std::int64_t> periods;
    for (std::size_t i = 0; i < ns; ++i) {
      const std::int64_t period = x.shape()[int(i) + 1] * strides_[i];
      const std::int64_t ydim = y.shape()[int(i) + 1];
      if (period == 0) {
        throw Error("ConvTranspose: CIRCULAR padding needs non-empty spatial dims, got inputs " +
                    inputs.shape().str() + detail::module_path_suffix());
      }
      const std::int64_t diff = (((period - ydim) % (2 * period)) + 2 * period) % (2 * period);
      total.emplace_back(transpose_kernel ? diff / 2 : (diff + 1) / 2,
                         transpose_kernel ? (diff + 1) / 2 : diff / 2);
      periods.push_back(period);
    }
    total.emplace_back(0, 0);
    y = numpy::pad(y, total);
    for (std::size_t i = 0; i < ns; ++i) {
      const int axis = int(i) + 1;
      std::vector<std::int64_t> shape;
      for (int d = 0; d < y.ndim(); ++d) {
        if (d == axis) {
          shape.push_back(-1);
          shape.push_back(periods[i]);
        } else {
          shape.push_back(y.shape()[d]);
        }
      }
      y = numpy::sum(numpy::reshape(y, shape), axis);
    }
  }
  if (use_bias) y = y + as(bias, dt);
  return restore_batch(y, num_batch, batch_shape);
}

}  // namespace loom::nn
