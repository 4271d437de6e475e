// Private: the autodiff graph (see loom/autodiff.hpp and detail/primitive.hpp).
//
// Ops declare their VJP with detail::bind (detail/primitive.hpp); a VJP returns one cotangent
// per input, in the inputs' order; an invalid Array() means "no contribution".
//
// One graph serves every nested trace. A node's `stamp` is the largest trace id among the leaves
// it descends from, so the backward pass of trace T skips every node stamped below T (it cannot
// depend on T's leaves). A leaf of an inner trace whose argument carries an outer trace's history
// has that history as its parent (identity VJP), so outer gradients flow through inner traces.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "detail/primitive.hpp"
#include "loom/array.hpp"

namespace loom::detail {

struct Node : std::enable_shared_from_this<Node> {
  std::vector<std::shared_ptr<Node>> parents;  // one per op input; null when untracked
  Vjp vjp;                                     // empty for leaves without a parent
  Array saved_output;                          // detached output, when the VJP reads it
  std::uint64_t stamp = 0;                     // largest trace id among the ancestor leaves
  std::uint64_t leaf_of = 0;                   // the trace whose argument this is; 0 for ops
  std::int64_t leaf_index = -1;                // >= 0 for the traced arguments
  Shape shape;
  DType dtype = DType::float32;
};

/// Number of grad traces alive on this thread (0: nothing is recorded).
extern thread_local int g_trace_depth;

inline bool recording() {
  return g_trace_depth > 0;
}

/// Suspends recording on this thread for its lifetime (jit/vmap captures still see ops).
struct NoRecordGuard {
  int saved = g_trace_depth;
  NoRecordGuard() { g_trace_depth = 0; }
  ~NoRecordGuard() { g_trace_depth = saved; }
  NoRecordGuard(const NoRecordGuard&) = delete;
  NoRecordGuard& operator=(const NoRecordGuard&) = delete;
};

/// Attaches a node to `out` (when some input has history) whose VJP is `vjp`; `keep_output`
/// saves the detached output for it. The engine's own entry for custom rules.
void attach(Array& out, const std::vector<const Array*>& inputs, Vjp vjp, bool keep_output);

/// Sums `g` (shaped like a broadcast result) back down to `shape` (the VJP of broadcasting).
Array unbroadcast(const Array& g, const Shape& shape);

}  // namespace loom::detail
