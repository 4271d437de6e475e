// Private: helpers for writing vmap batching rules (see BatchRule in detail/primitive.hpp).
//
// A rule receives its inputs with the batch on axis 0 (or shared) and re-expresses the op on
// the whole batch, usually by shifting the op's axis parameters past the new leading axis:
//
//   [axes, keepdims](const std::vector<Array>& in, const std::vector<bool>&) {
//     return sum(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims);
//   }
//
// Included by the numpy layer and above only (it calls numpy ops).
#pragma once

#include <cstdint>
#include <vector>

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::detail {

/// The batch size: axis 0 of the first batched input.
inline std::int64_t batch_size(const std::vector<Array>& in, const std::vector<bool>& batched) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (batched[i]) return in[i].shape()[0];
  }
  return 1;
}

/// One example's axis `axis` (negative counts from the end of an example of rank `rank`) as an
/// axis of the batched array.
inline int shift_axis(int axis, int rank) {
  return (axis < 0 ? axis + rank : axis) + 1;
}

/// Axes of one example (nullopt: all of them) as axes of the batched array.
inline numpy::Axes shift_axes(const numpy::Axes& axes, int rank) {
  std::vector<int> out;
  if (!axes.axes) {
    for (int d = 0; d < rank; ++d) out.push_back(d + 1);
  } else {
    for (int a : *axes.axes) out.push_back(shift_axis(a, rank));
  }
  return numpy::Axes(std::move(out));
}

/// `x` with the batch on axis 0: as it is when batched, else repeated `size` times (for rules
/// whose op needs every operand batched).
inline Array with_batch(const Array& x, bool batched, std::int64_t size) {
  if (batched || !x.valid()) return x;
  Shape s = x.shape();
  s.insert(0, size);
  return numpy::broadcast_to(numpy::expand_dims(x, {0}), s);
}

/// Shape {size} + s.
inline Shape batched_shape(std::int64_t size, const Shape& s) {
  Shape out = s;
  out.insert(0, size);
  return out;
}

}  // namespace loom::detail
