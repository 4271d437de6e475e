// Shape manipulation and indexing, as jax.numpy: reshape, ravel, transpose, swapaxes,
// moveaxis, expand_dims, squeeze, broadcast_to, broadcast_shapes, concatenate, stack, split,
// slice, index, pad, take, take_along_axis, one_hot.
//
//   auto y = jnp::reshape(x, {2, -1});
//   auto t = jnp::transpose(x, {1, 0});
//   auto s = jnp::slice(x, {{0, 2}, {1, jnp::kEnd, 2}});   // x[0:2, 1::2]
//   auto p = jnp::pad(x, {{1, 1}, {0, 2}});                // constant zero padding
//   auto parts = jnp::split(x, 3, /*axis=*/0);
// All of these are differentiable in their array arguments (not in integer indices). Bad
// axes, shapes and indices are a loom::Error naming the op and the shapes involved.
// Reshape (and ravel/expand_dims/squeeze) share the input's buffer: arrays are immutable.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::numpy {

/// New shape with at most one -1 (inferred); a view of the same buffer.
///   jnp::reshape(jnp::arange(6), {2, -1})  -> shape (2, 3)
Array reshape(const Array& x, std::vector<std::int64_t> shape);
/// reshape(x, {-1}).
Array ravel(const Array& x);
/// Reverses the axes (x.T).  jnp::transpose(x) for x (2, 3, 4) -> (4, 3, 2)
Array transpose(const Array& x);
/// Permutes the axes: result axis i is input axis axes[i].  jnp::transpose(x, {0, 2, 1})
Array transpose(const Array& x, std::vector<int> axes);
/// Exchanges two axes.  jnp::swapaxes(x, 0, -1)
Array swapaxes(const Array& x, int axis1, int axis2);
/// Moves one axis to a new position.  jnp::moveaxis(x, -1, 0) for (2, 3, 4) -> (4, 2, 3)
Array moveaxis(const Array& x, int source, int destination);
/// Inserts size-1 axes at the given positions of the result.  jnp::expand_dims(x, {0, -1})
Array expand_dims(const Array& x, Axes axes);
/// Removes the given size-1 axes (all size-1 axes when none are given); naming an axis whose
/// size is not 1 is a loom::Error.  jnp::squeeze(jnp::zeros({1, 3, 1}), 0) -> shape (3, 1)
Array squeeze(const Array& x, Axes axes = {});
/// NumPy broadcasting of x to `shape`.  jnp::broadcast_to(Array({1, 2}), loom::Shape{3, 2})
Array broadcast_to(const Array& x, Shape shape);
/// The broadcast shape of two shapes, or a loom::Error naming `op`.
///   jnp::broadcast_shapes(loom::Shape{2, 1}, loom::Shape{3}) -> (2, 3)
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast_shapes");
/// Joins arrays along an existing axis (dtypes promote as in loom/dtype.hpp).
///   jnp::concatenate({a, b}, -1)
Array concatenate(const std::vector<Array>& xs, int axis = 0);
/// Joins equally shaped arrays along a new axis.  jnp::stack({a, b}, 1)
Array stack(const std::vector<Array>& xs, int axis = 0);
/// Into `sections` equal parts along axis (a loom::Error when it does not divide).
///   auto [q, k, v] = ... jnp::split(qkv, 3, -1)
std::vector<Array> split(const Array& x, std::int64_t sections, int axis = 0);
/// At the given split indices along axis (numpy.split with a list; indices follow Python
/// slicing: negative ones count from the end, out-of-range ones clamp).
///   jnp::split(x, std::vector<std::int64_t>{2, 5}, 0) -> x[:2], x[2:5], x[5:]
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
/// x[..., i, ...] along `axis` (drops that axis); negative i counts from the end.
///   jnp::index(x, -1, 1) is x[:, -1]
Array index(const Array& x, std::int64_t i, int axis = 0);

/// Constant padding: (before, after) per axis; a single pair applies to every axis.
///   jnp::pad(img, {{0, 0}, {1, 1}, {1, 1}, {0, 0}})
Array pad(const Array& x, const std::vector<std::pair<std::int64_t, std::int64_t>>& pad_width,
          double constant_value = 0.0);
/// Elements at integer `indices` along axis (the flattened array when axis is nullopt).
/// Negative indices count from the end; out-of-range indices are a loom::Error (jnp.take
/// would fill them with NaN; loom checks).  jnp::take(emb, token_ids, 0)
Array take(const Array& x, const Array& indices, std::optional<int> axis = std::nullopt);
/// out[..., k, ...] = x[..., indices[..., k, ...], ...] along `axis`; indices has x's rank
/// and the other axes broadcast.  jnp::take_along_axis(logp, labels_2d, -1)
Array take_along_axis(const Array& x, const Array& indices, int axis);
/// One-hot encoding along a new last axis; indices outside [0, num_classes) give zero rows
/// (as jax.nn.one_hot). Not differentiable.  jnp::one_hot(labels, 10)
Array one_hot(const Array& indices, std::int64_t num_classes, DType dtype = DType::float32);

}  // namespace loom::numpy
