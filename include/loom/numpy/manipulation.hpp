// Shape manipulation and indexing, as jax.numpy: reshape, transpose, swapaxes, expand_dims,
// squeeze, broadcast_to, concatenate, stack, split, slice, pad, take, take_along_axis, one_hot.
//
//   auto y = jnp::reshape(x, {2, -1});
//   auto t = jnp::transpose(x, {1, 0});
//   auto s = jnp::slice(x, {{0, 2}, {1, jnp::kEnd, 2}});   // x[0:2, 1::2]
//   auto p = jnp::pad(x, {{1, 1}, {0, 2}});                // constant zero padding
//   auto parts = jnp::split(x, 3, /*axis=*/0);
// All of these are differentiable in their array arguments.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::numpy {

/// New shape with at most one -1 (inferred). Wrong sizes are a loom::Error.
Array reshape(const Array& x, std::vector<std::int64_t> shape);
Array ravel(const Array& x);
/// Permutes axes; no `axes` reverses them (x.T).
Array transpose(const Array& x, std::optional<std::vector<int>> axes = std::nullopt);
Array swapaxes(const Array& x, int axis1, int axis2);
Array moveaxis(const Array& x, int source, int destination);
Array expand_dims(const Array& x, Axes axes);
/// Removes the given size-1 axes (all size-1 axes when none are given).
Array squeeze(const Array& x, Axes axes = {});
Array broadcast_to(const Array& x, Shape shape);
/// The broadcast shape of two shapes, or a loom::Error naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast_shapes");
Array concatenate(const std::vector<Array>& xs, int axis = 0);
Array stack(const std::vector<Array>& xs, int axis = 0);
/// Into `sections` equal parts along axis (a loom::Error when it does not divide).
std::vector<Array> split(const Array& x, std::int64_t sections, int axis = 0);
/// At the given split indices along axis (numpy.split with a list).
std::vector<Array> split(const Array& x, const std::vector<std::int64_t>& indices, int axis);

/// Basic slicing: one Slice per leading axis (the remaining axes are taken whole), Python
/// semantics: an unset start/stop is Python's None, negative indices count from the end,
/// out-of-range bounds are clamped, step may be negative but not 0.
///   jnp::slice(x, {{1, 3}});                       // x[1:3]
///   jnp::slice(x, {{}, {.step = -1}});             // x[:, ::-1]
///   jnp::slice(x, {{-2, jnp::kEnd}});              // x[-2:]
inline constexpr std::int64_t kEnd = std::numeric_limits<std::int64_t>::max();
struct Slice {
  std::optional<std::int64_t> start;  // None: 0 (or the last element when step < 0)
  std::optional<std::int64_t> stop;   // None: the end (or before the first element when step < 0)
  std::int64_t step = 1;
};
Array slice(const Array& x, const std::vector<Slice>& slices);
/// x[..., index, ...] along `axis` (drops that axis).
Array index(const Array& x, std::int64_t i, int axis = 0);

/// Constant padding: (before, after) per axis; a single pair applies to every axis.
Array pad(const Array& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& pad_width,
          double constant_value = 0.0);
/// Elements at integer `indices` along axis (the flattened array when axis is nullopt).
/// Out-of-range indices are a loom::Error (JAX clamps silently; loom checks).
Array take(const Array& x, const Array& indices, std::optional<int> axis = std::nullopt);
Array take_along_axis(const Array& x, const Array& indices, int axis);
/// One-hot encoding along a new last axis; indices outside [0, num_classes) give zero rows
/// (as jax.nn.one_hot).
Array one_hot(const Array& indices, std::int64_t num_classes, DType dtype = DType::float32);

}  // namespace loom::numpy
