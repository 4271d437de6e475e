// Private: how an op records its VJP for reverse-mode autodiff (see loom/autodiff.hpp).
//
// Each primitive defines, in one function, its shape rule, its kernel and its VJP:
//
//   Array exp(const Array& x) {
//     Array out = ...kernel...;
//     detail::record(out, {&x}, [out_value = out.detached()](const Array& g) {
//       return std::vector<Array>{g * out_value};
//     });
//     return out;
//   }
//
// record() is free when no trace is active (one thread-local load). A pullback returns one
// cotangent per input, in the inputs' order; an invalid Array() means "no contribution".
// Pullbacks must not capture `out` itself with its node (use out.detached()): that would be a
// reference cycle.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "loom/array.hpp"

namespace loom::detail {

using Pullback = std::function<std::vector<Array>(const Array& cotangent)>;

struct Node {
  std::vector<std::shared_ptr<Node>> parents;  // one per op input; null when untracked
  Pullback pullback;                           // empty for leaves
  std::uint64_t trace_id = 0;
  std::int64_t leaf_index = -1;  // >= 0 for the traced arguments
  Shape shape;
  DType dtype = DType::float32;
};

/// Number of traces alive on this thread (0: nothing is recorded).
extern thread_local int g_trace_depth;

inline bool recording() {
  return g_trace_depth > 0;
}

void record_impl(Array& out, std::initializer_list<const Array*> inputs, Pullback pullback);
void record_impl(Array& out, const std::vector<Array>& inputs, Pullback pullback);

/// Attaches the VJP of `out` with respect to `inputs` when any input is being differentiated.
inline void record(Array& out, std::initializer_list<const Array*> inputs, Pullback pullback) {
  if (recording()) record_impl(out, inputs, std::move(pullback));
}
inline void record(Array& out, const std::vector<Array>& inputs, Pullback pullback) {
  if (recording()) record_impl(out, inputs, std::move(pullback));
}

/// Sums `g` (shaped like a broadcast result) back down to `shape` (the VJP of broadcasting).
Array unbroadcast(const Array& g, const Shape& shape);

}  // namespace loom::detail
