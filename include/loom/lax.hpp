// loom::lax: the jax.lax primitives that jax.numpy does not cover: dot_general,
// conv_general_dilated (Flax's NHWC/HWIO layout) and reduce_window (pooling).
//
//   // 2-D convolution, NHWC input, HWIO kernel, SAME padding, stride 2:
//   auto y = lax::conv_general_dilated(x, w, {2, 2}, lax::Padding::same());
//   // 3x3 max pooling, stride 2:
//   auto p = lax::reduce_window(x, lax::ReduceOp::max, {1, 3, 3, 1}, {1, 2, 2, 1},
//                               lax::Padding::valid());
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "loom/array.hpp"

namespace loom::lax {

/// Contracting and batch dimensions of dot_general: ((lhs_contract, rhs_contract),
/// (lhs_batch, rhs_batch)). The result is batch dims, then lhs free dims, then rhs free dims.
struct DotDimensionNumbers {
  std::vector<int> lhs_contracting, rhs_contracting;
  std::vector<int> lhs_batch, rhs_batch;
};
Array dot_general(const Array& lhs, const Array& rhs, const DotDimensionNumbers& dims);

/// Padding: "SAME", "VALID" or explicit (low, high) pairs per spatial dimension.
struct Padding {
  enum class Kind { same, valid, explicit_pairs } kind = Kind::valid;
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  static Padding same() { return {Kind::same, {}}; }
  static Padding valid() { return {Kind::valid, {}}; }
  static Padding explicit_(std::vector<std::pair<std::int64_t, std::int64_t>> p) {
    return {Kind::explicit_pairs, std::move(p)};
  }
};

/// N-d convolution in Flax's layout: lhs (N, spatial..., C_in), rhs (spatial..., C_in / groups,
/// C_out), result (N, spatial'..., C_out). 1, 2 or 3 spatial dimensions. Differentiable in both.
Array conv_general_dilated(const Array& lhs, const Array& rhs,
                           const std::vector<std::int64_t>& window_strides, const Padding& padding,
                           const std::vector<std::int64_t>& lhs_dilation = {},
                           const std::vector<std::int64_t>& rhs_dilation = {},
                           std::int64_t feature_group_count = 1);

enum class ReduceOp { max, sum, min };
/// reduce_window over every dimension of x (window and strides give one entry per dim).
/// Padding applies to every dimension; padded elements are the op's identity (-inf for max, 0
/// for sum). Average pooling is reduce_window(sum) divided by the window size (or by counts of
/// valid elements, as flax.linen.avg_pool with count_include_pad=False).
Array reduce_window(const Array& x, ReduceOp op, const std::vector<std::int64_t>& window,
                    const std::vector<std::int64_t>& strides, const Padding& padding);

}  // namespace loom::lax
