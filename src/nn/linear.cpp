// nn::Dense, DenseGeneral, Einsum and Embed, as flax/linen/linear.py.
#include "loom/nn/linear.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

#include "loom/lax.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/linalg.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::nn {

namespace {

std::string join(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}
std::string join(const std::vector<int>& v) {
  return join(std::vector<std::int64_t>(v.begin(), v.end()));
}
std::int64_t prod(const std::vector<std::int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), std::int64_t{1}, std::multiplies<>());
}

// Flax's canonicalize_dtype(..., inexact=True): `dtype` if given (it must be floating), else the
// promotion of the operands, raised to float32 when that is not floating.
DType inexact_dtype(const char* op, std::optional<DType> dtype, DType a, DType b) {
  if (dtype.has_value()) {
    if (!is_floating(*dtype)) {
      throw Error(std::string(op) + ": dtype must be inexact (floating), got " +
                  dtype_name(*dtype) + detail::module_path_suffix());
    }
    return *dtype;
  }
  const DType t = promote_types(a, b);
  return is_floating(t) ? t : promote_types(DType::float32, t);
}

Array cast(const Array& x, DType dt) {
  return x.dtype() == dt ? x : x.astype(dt);
}

std::string describe_input(const Array& x) {
  return x.valid() ? "shape " + x.shape().str() : std::string("an empty array");
}

// An initializer that draws `flat_shape` and reshapes to the requested shape (Flax's
// kernel_init_wrap / bias_init_wrap).
initializers::Initializer reshaped_init(initializers::Initializer init, Shape flat_shape) {
  return
      [init = std::move(init), flat_shape](const random::Key& key, const Shape& shape, DType dt) {
        return numpy::reshape(init(key, flat_shape, dt), shape.to_vector());
      };
}

}  // namespace

Array Dense::call(const Array& inputs) const {
  if (features <= 0) {
    throw Error("Dense: features must be positive, got " + std::to_string(features) +
                detail::module_path_suffix());
  }
  if (!inputs.valid() || inputs.ndim() == 0) {
    throw Error("Dense: inputs need at least one axis, got " + describe_input(inputs) +
                detail::module_path_suffix());
  }
  Array kernel = param("kernel", kernel_init, Shape{inputs.shape().back(), features}, param_dtype);
  Array bias;
  if (use_bias) bias = param("bias", bias_init, Shape{features}, param_dtype);
  // Flax's promote_dtype (inexact): everything in `dtype` (which must be floating), else in the
  // promotion of the three.
  const DType dt = inexact_dtype("Dense", dtype, inputs.dtype(), param_dtype);
  Array x = inputs.dtype() == dt ? inputs : inputs.astype(dt);
  if (kernel.dtype() != dt) kernel = kernel.astype(dt);
  Array y = numpy::matmul(x, kernel);
  if (use_bias) y = y + (bias.dtype() == dt ? bias : bias.astype(dt));
  return y;
}

// ---- DenseGeneral ---------------------------------------------------------------------------

Array DenseGeneral::call(const Array& inputs) const {
  const auto fail = [&](const std::string& what) {
    throw Error("DenseGeneral: " + what + detail::module_path_suffix());
  };
  if (features.empty()) fail("features must name at least one output size, got ()");
  for (std::int64_t f : features) {
    if (f <= 0) fail("features must be positive, got " + join(features));
  }
  if (!inputs.valid() || inputs.ndim() == 0) {
    fail("inputs need at least one axis, got " + describe_input(inputs));
  }
  const int ndim = inputs.ndim();
  const Shape& in_shape = inputs.shape();
  if (!batch_dims.empty()) {
    // Flax: set(batch_dims) == set(range(max(batch_dims) + 1)), on the values as given.
    std::vector<int> sorted = batch_dims;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i] != static_cast<int>(i)) {
        fail("batch_dims " + join(batch_dims) +
             " must be consecutive leading dimensions starting from 0");
      }
    }
  }
  // Normalized, sorted axes (Flax's _normalize_axes).
  std::vector<int> ax;
  for (int a : axis) {
    const int n = a < 0 ? a + ndim : a;
    if (n < 0 || n >= ndim) {
      fail("axis " + std::to_string(a) + " is out of range for inputs of shape " + in_shape.str());
    }
    ax.push_back(n);
  }
  std::sort(ax.begin(), ax.end());
  if (ax.empty()) fail("axis must name at least one input axis");
  if (std::adjacent_find(ax.begin(), ax.end()) != ax.end()) {
    fail("axis " + join(axis) + " repeats an axis of inputs of shape " + in_shape.str());
  }
  std::vector<int> bd(batch_dims.begin(), batch_dims.end());
  std::sort(bd.begin(), bd.end());
  bd.erase(std::unique(bd.begin(), bd.end()), bd.end());
  for (int b : bd) {
    if (b >= ndim) {
      fail("batch_dims " + join(batch_dims) + " are out of range for inputs of shape " +
           in_shape.str());
    }
    if (std::find(ax.begin(), ax.end(), b) != ax.end()) {
      fail("axis " + join(axis) + " and batch_dims " + join(batch_dims) +
           " share an axis of inputs of shape " + in_shape.str());
    }
  }
  const int n_batch = static_cast<int>(bd.size());
  const int n_axis = static_cast<int>(ax.size());

  std::vector<std::int64_t> batch_shape, in_sizes;
  for (int b : bd) batch_shape.push_back(in_shape[b]);
  for (int a : ax) in_sizes.push_back(in_shape[a]);
  // The non-contracted input axes, with 1 for the non-batch ones (the bias broadcasts there).
  std::vector<std::int64_t> expanded_batch_shape;
  for (int d = 0; d < ndim; ++d) {
    if (std::find(ax.begin(), ax.end(), d) != ax.end()) continue;
    expanded_batch_shape.push_back(std::find(bd.begin(), bd.end(), d) != bd.end() ? in_shape[d]
                                                                                  : 1);
  }

  std::vector<std::int64_t> kernel_shape = batch_shape;
  kernel_shape.insert(kernel_shape.end(), in_sizes.begin(), in_sizes.end());
  kernel_shape.insert(kernel_shape.end(), features.begin(), features.end());
  const Shape flat_kernel{prod(batch_shape) * prod(in_sizes), prod(features)};
  Array kernel =
      param("kernel", reshaped_init(kernel_init, flat_kernel), Shape(kernel_shape), param_dtype);
  Array bias;
  if (use_bias) {
    std::vector<std::int64_t> bias_shape = batch_shape;
    bias_shape.insert(bias_shape.end(), features.begin(), features.end());
    bias = param("bias", reshaped_init(bias_init, Shape{prod(batch_shape) * prod(features)}),
                 Shape(bias_shape), param_dtype);
  }

  const DType dt = inexact_dtype("DenseGeneral", dtype, inputs.dtype(), param_dtype);
  lax::DotDimensionNumbers dims;
  dims.lhs_contracting = ax;
  dims.lhs_batch = bd;
  for (int i = 0; i < n_axis; ++i) dims.rhs_contracting.push_back(n_batch + i);
  for (int i = 0; i < n_batch; ++i) dims.rhs_batch.push_back(i);
  Array out = lax::dot_general(cast(inputs, dt), cast(kernel, dt), dims);
  if (use_bias) {
    std::vector<std::int64_t> b = expanded_batch_shape;
    b.insert(b.end(), features.begin(), features.end());
    out = out + numpy::reshape(cast(bias, dt), b);
  }
  return out;
}

// ---- Einsum ---------------------------------------------------------------------------------

namespace {

// One einsum term expanded to a label per axis: letters as themselves, the axes of "..." as
// labels 256 + j, right-aligned across the operands as numpy (and opt_einsum's parser) do.
struct Term {
  std::vector<int> letters;  // -1 marks the ellipsis
  int named = 0;
};

Term parse_term(const std::string& s) {
  Term t;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "...") == 0) {
      t.letters.push_back(-1);
      i += 2;
    } else {
      t.letters.push_back(static_cast<unsigned char>(s[i]));
      ++t.named;
    }
  }
  return t;
}

std::vector<int> expand(const Term& t, int ell_rank, int max_ell) {
  std::vector<int> labels;
  for (int l : t.letters) {
    if (l != -1) {
      labels.push_back(l);
      continue;
    }
    for (int j = max_ell - ell_rank; j < max_ell; ++j) labels.push_back(256 + j);
  }
  return labels;
}

}  // namespace

Array Einsum::call(const Array& inputs, std::optional<std::string> einsum_str_arg) const {
  std::string eq = merge_param("einsum_str", einsum_str, einsum_str_arg);
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const auto fail = [&](const std::string& what) {
    throw Error("Einsum: " + what + detail::module_path_suffix());
  };
  const std::size_t arrow = eq.find("->");
  if (arrow == std::string::npos)
    fail("`einsum_str` equation must be explicit and include \"->\".");
  const auto commas = std::count(eq.begin(), eq.end(), ',');
  if (commas != 1) {
    fail(
        "`einsum_str` equation must have exactly two operands and therefore, exactly one comma "
        "character, instead of " +
        std::to_string(commas));
  }
  if (!inputs.valid()) fail("inputs is an empty array");
  if (shape.empty()) fail("shape (the kernel's) must have at least one axis");
  const std::size_t comma = eq.find(',');
  if (comma > arrow) fail("the comma of \"" + eq + "\" must come before \"->\"");
  const Term lhs = parse_term(eq.substr(0, comma));
  const Term rhs = parse_term(eq.substr(comma + 1, arrow - comma - 1));
  const Term res = parse_term(eq.substr(arrow + 2));
  const bool rhs_ell = std::find(rhs.letters.begin(), rhs.letters.end(), -1) != rhs.letters.end();
  const bool lhs_ell = std::find(lhs.letters.begin(), lhs.letters.end(), -1) != lhs.letters.end();
  const int k_rank = shape.size();
  if (rhs_ell ? rhs.named > k_rank : rhs.named != k_rank) {
    fail("the kernel subscripts of \"" + eq + "\" do not fit the kernel shape " + shape.str());
  }
  if (lhs_ell ? lhs.named > inputs.ndim() : lhs.named != inputs.ndim()) {
    fail("the input subscripts of \"" + eq + "\" do not fit inputs of shape " +
         inputs.shape().str());
  }
  const int lhs_ell_rank = lhs_ell ? inputs.ndim() - lhs.named : 0;
  const int rhs_ell_rank = rhs_ell ? k_rank - rhs.named : 0;
  const int max_ell = std::max(lhs_ell_rank, rhs_ell_rank);
  const std::vector<int> rhs_labels = expand(rhs, rhs_ell_rank, max_ell);
  const std::vector<int> out_labels = expand(res, max_ell, max_ell);

  Array kernel = param("kernel", kernel_init, shape, param_dtype);
  Array bias;
  std::vector<std::int64_t> broadcast_bias;
  if (use_bias) {
    std::vector<std::int64_t> bias_shape;
    for (int l : out_labels) {
      const auto it = std::find(rhs_labels.begin(), rhs_labels.end(), l);
      if (it == rhs_labels.end()) {
        broadcast_bias.push_back(1);
      } else {
        const std::int64_t n = shape[static_cast<int>(it - rhs_labels.begin())];
        broadcast_bias.push_back(n);
        bias_shape.push_back(n);
      }
    }
    bias = param("bias", bias_init, Shape(bias_shape), param_dtype);
  }
  const DType dt = inexact_dtype("Einsum", dtype, inputs.dtype(), param_dtype);
  Array y;
  try {
    y = numpy::einsum(eq, {cast(inputs, dt), cast(kernel, dt)});
  } catch (const Error& e) {
    fail(std::string(e.what()) + " (inputs of shape " + inputs.shape().str() + ", kernel " +
         shape.str() + ")");
  }
  if (use_bias) y = y + numpy::reshape(cast(bias, dt), broadcast_bias);
  return y;
}

// ---- Embed ----------------------------------------------------------------------------------

namespace {

void check_embed(const Embed& e) {
  if (e.num_embeddings <= 0 || e.features <= 0) {
    throw Error("Embed: num_embeddings and features must be positive, got " +
                std::to_string(e.num_embeddings) + " and " + std::to_string(e.features) +
                detail::module_path_suffix());
  }
}

}  // namespace

Array Embed::call(const Array& inputs) const {
  check_embed(*this);
  if (!inputs.valid() || !is_integer(inputs.dtype())) {
    throw Error("Embed: Input type must be an integer or unsigned integer, got " +
                (inputs.valid() ? std::string(dtype_name(inputs.dtype())) + " inputs of shape " +
                                      inputs.shape().str()
                                : std::string("an empty array")) +
                detail::module_path_suffix());
  }
  Array embedding =
      param("embedding", embedding_init, Shape{num_embeddings, features}, param_dtype);
  if (dtype.has_value()) embedding = cast(embedding, *dtype);  // promote_dtype(inexact=False)
  Shape out_shape = inputs.shape();
  out_shape.push_back(features);
  if (num_embeddings == 1) return numpy::broadcast_to(embedding, out_shape);
  try {
    return numpy::take(embedding, inputs, 0);
  } catch (const Error& e) {
    throw Error("Embed: " + std::string(e.what()) + " (num_embeddings " +
                std::to_string(num_embeddings) + ")" + detail::module_path_suffix());
  }
}

Array Embed::attend(const Array& query) const {
  check_embed(*this);
  if (!query.valid() || query.ndim() == 0 || query.shape().back() != features) {
    throw Error(
        "Embed.attend: query needs a last axis of size features = " + std::to_string(features) +
        ", got " + describe_input(query) + detail::module_path_suffix());
  }
  Array embedding =
      param("embedding", embedding_init, Shape{num_embeddings, features}, param_dtype);
  const DType dt = inexact_dtype("Embed.attend", dtype, query.dtype(), embedding.dtype());
  // query @ embedding.T, as one GEMM with the transpose read in place.
  return lax::dot_general(cast(query, dt), cast(embedding, dt),
                          {.lhs_contracting = {query.ndim() - 1}, .rhs_contracting = {1}});
}

}  // namespace loom::nn
