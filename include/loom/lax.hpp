// loom::lax: the jax.lax primitives that jax.numpy does not cover: dot_general,
// conv_general_dilated (Flax's NHWC/HWIO layout) and reduce_window (pooling).
//
//   namespace lax = loom::lax;
//   // 2-D convolution, NHWC input, HWIO kernel, SAME padding, stride 2:
//   auto y = lax::conv_general_dilated(x, w, {2, 2}, lax::Padding::same());
//   // 3x3 max pooling, stride 2:
//   auto p = lax::reduce_window(x, lax::ReduceOp::max, {1, 3, 3, 1}, {1, 2, 2, 1},
//                               lax::Padding::valid());
//
// All three are differentiable (in both operands for the binary ones); bad arguments raise
// loom::Error naming the op, the shapes/dtypes and what was expected.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "loom/array.hpp"

namespace loom::lax {

/// Contracting and batch dimensions of dot_general: ((lhs_contract, rhs_contract),
/// (lhs_batch, rhs_batch)), paired position by position.
struct DotDimensionNumbers {
  std::vector<int> lhs_contracting = {}, rhs_contracting = {};
  std::vector<int> lhs_batch = {}, rhs_batch = {};
};

/// jax.lax.dot_general. The result has the batch dims (in lhs_batch order), then lhs's free
/// dims, then rhs's free dims, each in their original order.
///   // (b, m, k) x (b, n, k) -> (b, m, n), i.e. x @ y^T per batch; no transpose is copied
///   auto z = lax::dot_general(x, y, {.lhs_contracting = {2}, .rhs_contracting = {2},
///                                    .lhs_batch = {0}, .rhs_batch = {0}});
/// Out-of-range or repeated dims and size mismatches are a loom::Error.
Array dot_general(const Array& lhs, const Array& rhs, const DotDimensionNumbers& dims);

/// Padding: "SAME", "VALID" or explicit (low, high) pairs per windowed dimension.
/// SAME follows XLA: out = ceil(in / stride), total = max((out - 1) * stride + window - in, 0),
/// low = total / 2, high = total - low (window dilated by rhs_dilation for convolutions).
///   lax::Padding::explicit_({{1, 1}, {0, 2}})
struct Padding {
  enum class Kind { same, valid, explicit_pairs } kind = Kind::valid;
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  static Padding same() { return {Kind::same, {}}; }
  static Padding valid() { return {Kind::valid, {}}; }
  static Padding explicit_(std::vector<std::pair<std::int64_t, std::int64_t>> p) {
    return {Kind::explicit_pairs, std::move(p)};
  }
};

/// jax.lax.conv_general_dilated with dimension_numbers ("NHWC", "HWIO", "NHWC") generalized to
/// 1-3 spatial dims: lhs (N, spatial..., C_in), rhs (spatial..., C_in / groups, C_out), result
/// (N, spatial'..., C_out). window_strides has one entry per spatial dim; empty dilations mean 1.
/// lhs_dilation > 1 is a transposed convolution (with explicit padding only, as in JAX);
/// rhs_dilation > 1 an atrous one; feature_group_count splits channels into groups
/// (C_in == groups * rhs's C_in dim, groups divides C_out; groups == C_in is depthwise).
///   auto y = lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::same(), {}, {2, 2});
/// float32/float64 only. Implemented as im2col + GEMM (a 1x1 stride-1 conv is a single GEMM).
Array conv_general_dilated(const Array& lhs, const Array& rhs,
                           const std::vector<std::int64_t>& window_strides, const Padding& padding,
                           const std::vector<std::int64_t>& lhs_dilation = {},
                           const std::vector<std::int64_t>& rhs_dilation = {},
                           std::int64_t feature_group_count = 1);

/// conv_general_dilated(lhs, rhs, ...) + bias, bias of shape (C_out,), as one primitive: on the
/// float32 oneDNN path the convolution adds the bias itself (no second pass over the output).
/// im2col (float64, fallbacks) adds the bias to each finished sum, bit for bit the two-step
/// form; oneDNN's fused bias rounds differently in the last float32 bits (as its conv already
/// differs from im2col's). bias is cast to the convolution's dtype. Gradients: the conv's, and gy
/// summed per channel.
///   auto y = lax::conv_general_dilated_bias(x, w, b, {1, 1}, lax::Padding::same());
Array conv_general_dilated_bias(const Array& lhs, const Array& rhs, const Array& bias,
                                const std::vector<std::int64_t>& window_strides,
                                const Padding& padding,
                                const std::vector<std::int64_t>& lhs_dilation = {},
                                const std::vector<std::int64_t>& rhs_dilation = {},
                                std::int64_t feature_group_count = 1);

enum class ReduceOp { max, sum, min };

/// jax.lax.reduce_window with max, min or add over every dimension of x (window and strides
/// give one entry per dim; padding one pair per dim). Padded elements are the op's identity
/// (-inf for max, +inf for min, 0 for sum). Average pooling is reduce_window(sum) divided by
/// the window size (or by counts of valid elements, as flax.linen.avg_pool with
/// count_include_pad=False).
///   auto p = lax::reduce_window(x, lax::ReduceOp::max, {1, 2, 2, 1}, {1, 2, 2, 1},
///                               lax::Padding::valid());          // 2x2 max pool, NHWC
/// Gradients: max/min send each cotangent to the first maximal/minimal element of its window
/// (XLA's select_and_scatter with ge/le; padding is never selected), sum to every element.
/// Integer operands are reduced too (not differentiated); bool operands are a loom::Error.
Array reduce_window(const Array& x, ReduceOp op, const std::vector<std::int64_t>& window,
                    const std::vector<std::int64_t>& strides, const Padding& padding);

/// reduce_window(x, sum, ...) / prod(window) in one pass (flax.linen.avg_pool with
/// count_include_pad=True), with the same rounding as the two-step form; its VJP divides each
/// cotangent once and scatters it, also in one pass. Floating operands only.
///   auto p = lax::reduce_window_mean(x, {1, 2, 2, 1}, {1, 2, 2, 1}, lax::Padding::valid());
Array reduce_window_mean(const Array& x, const std::vector<std::int64_t>& window,
                         const std::vector<std::int64_t>& strides, const Padding& padding);

/// One dimension of lax.pad: `low` and `high` elements added at the ends (negative: cropped)
/// and `interior` elements between neighbours (>= 0).
struct PadConfig {
  std::int64_t low = 0, high = 0, interior = 0;
};

/// jax.lax.pad: out dim = low + high + d + max(d - 1, 0) * interior, filled with padding_value
/// (a scalar of operand's dtype) except where operand's elements land, at low + i * (interior + 1).
///   lax::pad(x, jnp::zeros({}), {{1, 2, 0}, {0, 0, 1}});  // (2, 3) -> (5, 5)
///   lax::pad(x, 0.0, {{-1, 0, 0}});                        // crops the first row
/// Differentiable in operand (the cotangent's strided slice) and padding_value (the cotangent's
/// sum over the padded positions). One config per operand dim; interior < 0, a negative result
/// size, a non-scalar or differently typed padding_value are a loom::Error.
Array pad(const Array& operand, const Array& padding_value, const std::vector<PadConfig>& config);
/// padding_value as a weakly typed scalar (cast to operand's dtype).
Array pad(const Array& operand, double padding_value, const std::vector<PadConfig>& config);

}  // namespace loom::lax

namespace loom::lax {

/// jax.lax.conv_transpose with Flax's layout (lhs (N, spatial..., C_in), rhs (spatial..., I, O)):
/// a fractionally strided convolution, computed directly as conv_general_dilated with
/// window_strides 1, lhs_dilation = strides and the padding below. SAME and VALID are the
/// padding of the forward conv being transposed (per dim, with k the dilated kernel size and s
/// the stride: SAME pads (k - 1, s - 1) when s > k - 1, else (ceil((k + s - 2) / 2), floor);
/// VALID pads (k - 1, s - 1 + max(k - s, 0))); explicit pairs are the padding
/// of the transposed conv itself (JAX's use_consistent_padding=False). transpose_kernel flips the
/// spatial axes of rhs and swaps its I and O axes (rhs is then (spatial..., O, I)), as Keras'
/// Conv2DTranspose. rhs_dilation: empty means 1. Differentiable in both operands.
///   auto y = lax::conv_transpose(x, w, {2, 2}, lax::Padding::same());  // (1,4,4,3) -> (1,8,8,O)
Array conv_transpose(const Array& lhs, const Array& rhs, const std::vector<std::int64_t>& strides,
                     const Padding& padding, const std::vector<std::int64_t>& rhs_dilation = {},
                     bool transpose_kernel = false);

}  // namespace loom::lax
