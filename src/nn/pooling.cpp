// Pooling functions, as flax/linen/pooling.py.
#include "loom/nn/pooling.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::nn {
namespace {

std::string ints_str(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

double identity_of(lax::ReduceOp op) {
  switch (op) {
    case lax::ReduceOp::sum:
      return 0.0;
    case lax::ReduceOp::max:
      return -std::numeric_limits<double>::infinity();
    case lax::ReduceOp::min:
      return std::numeric_limits<double>::infinity();
  }
  return 0.0;
}

// reduce_window over the window dims with the identity as padding.
Array pool_identity(const Array& inputs, lax::ReduceOp op,
                    const std::vector<std::int64_t>& window_shape,
                    const std::vector<std::int64_t>& strides_in, const PaddingLike& padding,
                    const char* fn, bool mean = false) {
  const std::string who = std::string(fn) + ": inputs " +
                          (inputs.valid() ? inputs.shape().str() : std::string("(empty)")) +
                          ", window_shape " + ints_str(window_shape);
  // Errors name the running module, if any (these are functions, as in Flax).
  auto fail = [&](const std::string& what) {
    return Error(who + ": " + what + detail::module_path_suffix());
  };
  const std::size_t nw = window_shape.size();
  if (nw == 0) throw fail("window_shape must not be empty");
  if (!inputs.valid() || inputs.ndim() < int(nw) + 1) {
    throw fail("inputs must be (*batch_dims, " + std::to_string(nw) +
               " window dims, features), of rank >= " + std::to_string(nw + 1));
  }
  const std::vector<std::int64_t> strides =
      strides_in.empty() ? std::vector<std::int64_t>(nw, 1) : strides_in;
  if (strides.size() != nw) {
    throw fail("len(" + ints_str(window_shape) + ") must equal len(" + ints_str(strides_in) +
               ") (strides)");
  }
  const int nd = inputs.ndim(), nb = nd - int(nw) - 1;
  std::vector<std::int64_t> dims(std::size_t(nd), 1), steps(std::size_t(nd), 1);
  for (std::size_t i = 0; i < nw; ++i) {
    dims[std::size_t(nb) + i] = window_shape[i];
    steps[std::size_t(nb) + i] = strides[i];
  }
  lax::Padding pad = lax::Padding::valid();
  if (padding.is("SAME")) {
    pad = lax::Padding::same();
  } else if (padding.is("VALID")) {
    pad = lax::Padding::valid();
  } else if (padding.kind == PaddingLike::Kind::sequence && padding.pairs.size() == nw) {
    std::vector<std::pair<std::int64_t, std::int64_t>> pairs(std::size_t(nd), {0, 0});
    for (std::size_t i = 0; i < nw; ++i) {
      pairs[std::size_t(nb) + i] = {padding.pairs[i].low, padding.pairs[i].high};
    }
    pad = lax::Padding::explicit_(std::move(pairs));
  } else {
    throw fail("padding " + padding.str() + " must be 'SAME', 'VALID' or " + std::to_string(nw) +
               " (low, high) pairs, one per window dim");
  }
  try {
    // mean: the window sum and its 1/window divide in one pass (forward and VJP).
    if (mean) return lax::reduce_window_mean(inputs, dims, steps, pad);
    return lax::reduce_window(inputs, op, dims, steps, pad);
  } catch (const Error& e) {
    throw fail(e.what());
  }
}

}  // namespace

Array pool(const Array& inputs, double init, lax::ReduceOp reduce_fn,
           const std::vector<std::int64_t>& window_shape, const std::vector<std::int64_t>& strides,
           const PaddingLike& padding) {
  Array y = pool_identity(inputs, reduce_fn, window_shape, strides, padding, "pool");
  if (init == identity_of(reduce_fn)) return y;
  // lax.reduce_window pads with init and starts every window's reduction from it.
  switch (reduce_fn) {
    case lax::ReduceOp::max:
      return numpy::maximum(y, numpy::full_like(y, init));
    case lax::ReduceOp::min:
      return numpy::minimum(y, numpy::full_like(y, init));
    case lax::ReduceOp::sum: {
      // init once, plus init for each padding element of the window.
      std::int64_t win = 1;
      for (std::int64_t w : window_shape) win *= w;
      Shape ones_shape = inputs.shape();
      Array count = pool_identity(numpy::ones(ones_shape, y.dtype()), lax::ReduceOp::sum,
                                  window_shape, strides, padding, "pool");
      return y + (double(win) + 1.0 - count) * init;
    }
  }
  return y;
}

Array avg_pool(const Array& inputs, const std::vector<std::int64_t>& window_shape,
               const std::vector<std::int64_t>& strides, const PaddingLike& padding,
               bool count_include_pad) {
  if (count_include_pad && inputs.valid() && is_floating(inputs.dtype())) {
    return pool_identity(inputs, lax::ReduceOp::sum, window_shape, strides, padding, "avg_pool",
                         true);
  }
  Array y = pool_identity(inputs, lax::ReduceOp::sum, window_shape, strides, padding, "avg_pool");
  if (count_include_pad) {
    std::int64_t win = 1;
    for (std::int64_t w : window_shape) win *= w;
    return y / double(win);
  }
  // Flax: ones of shape inputs.shape[:-1] + (1,), with a single batch dim reduced to 1.
  Shape div_shape = inputs.shape();
  div_shape[div_shape.size() - 1] = 1;
  if (int(div_shape.size()) - 2 == int(window_shape.size())) div_shape[0] = 1;
  Array count = pool_identity(numpy::ones(div_shape, y.dtype()), lax::ReduceOp::sum, window_shape,
                              strides, padding, "avg_pool");
  return y / count;
}

Array max_pool(const Array& inputs, const std::vector<std::int64_t>& window_shape,
               const std::vector<std::int64_t>& strides, const PaddingLike& padding) {
  return pool_identity(inputs, lax::ReduceOp::max, window_shape, strides, padding, "max_pool");
}

Array min_pool(const Array& inputs, const std::vector<std::int64_t>& window_shape,
               const std::vector<std::int64_t>& strides, const PaddingLike& padding) {
  return pool_identity(inputs, lax::ReduceOp::min, window_shape, strides, padding, "min_pool");
}

}  // namespace loom::nn
