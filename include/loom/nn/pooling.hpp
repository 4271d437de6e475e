// Pooling functions (flax/linen/pooling.py): pool, avg_pool, max_pool, min_pool, through
// lax::reduce_window, differentiable.
//
//   auto y = nn::avg_pool(x, {2, 2}, {2, 2});               // NHWC, 2x2 windows, stride 2
//   auto m = nn::max_pool(x, {3, 3}, {2, 2}, "SAME");      // ResNet's stem
//   auto z = nn::avg_pool(x, {3, 3}, {}, {{1, 1}, {1, 1}}, /*count_include_pad=*/false);
//
// inputs are (*batch_dims, window dims..., features): the window covers the len(window_shape)
// dims before the last; every leading dim is a batch dim, and an input without batch dim
// (rank len(window_shape) + 1) works too. strides: one entry per window dim, empty means 1.
// padding: "SAME", "VALID" or one (low, high) pair per window dim (Flax accepts nothing else
// here: an int or "CIRCULAR" is a loom::Error).
#pragma once

#include <cstdint>
#include <vector>

#include "loom/array.hpp"
#include "loom/lax.hpp"
#include "loom/nn/conv.hpp"

namespace loom::nn {

/// flax.linen.pool with a built-in reduction: reduce_window of `reduce_fn` (sum, max or min)
/// over each window, padding with `init` and folding `init` in once, as lax.reduce_window does.
/// (A user-written reduce function is not supported: lax::reduce_window has sum, max and min.)
///   nn::pool(x, 0.0, loom::lax::ReduceOp::sum, {2, 2}, {1, 1}, "VALID")  // window sums
Array pool(const Array& inputs, double init, lax::ReduceOp reduce_fn,
           const std::vector<std::int64_t>& window_shape, const std::vector<std::int64_t>& strides,
           const PaddingLike& padding);

/// The mean over each window: the window sum divided by the window size
/// (count_include_pad=true, Flax's default) or by the number of non-padding elements.
///   nn::avg_pool(x, {2, 2}, {2, 2})
Array avg_pool(const Array& inputs, const std::vector<std::int64_t>& window_shape,
               const std::vector<std::int64_t>& strides = {}, const PaddingLike& padding = "VALID",
               bool count_include_pad = true);

/// The maximum over each window (padding is -inf). Gradient: to the first maximal element.
///   nn::max_pool(x, {2, 2}, {2, 2})
Array max_pool(const Array& inputs, const std::vector<std::int64_t>& window_shape,
               const std::vector<std::int64_t>& strides = {}, const PaddingLike& padding = "VALID");

/// The minimum over each window (padding is +inf).
///   nn::min_pool(x, {2, 2})
Array min_pool(const Array& inputs, const std::vector<std::int64_t>& window_shape,
               const std::vector<std::int64_t>& strides = {}, const PaddingLike& padding = "VALID");

}  // namespace loom::nn
