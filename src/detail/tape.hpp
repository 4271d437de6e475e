// Private: the autodiff graph (see loom/autodiff.hpp and detail/primitive.hpp).
//
// Ops declare their VJP with detail::bind (detail/primitive.hpp); a VJP returns one cotangent
// per input, in the inputs' order; an invalid Array() means "no contribution".
//
// One graph serves every nested trace. A node's `stamp` is the largest trace id among the leaves
// it descends from, so the backward pass of trace T skips every node stamped below T (it cannot
// depend on T's leaves). A leaf of an inner trace whose argument carries an outer trace's history
// has that history as its parent (identity VJP), so outer gradients flow through inner traces.
//
// Forward mode (jvp, src/autodiff/jvp_trace.cpp) keeps an array's tangents in the same node,
// tagged with their jvp level; a node made only for tangents has stamp 0, which every backward
// pass skips. A trace leaf inherits its argument's tangents, so jvp of grad sees them.
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
  // Forward-mode tangents of this value, one per jvp level that perturbs it (JAX tags tangents
  // with their trace level; a level's id is never reused, so a dead level is never read).
  std::vector<std::pair<std::uint64_t, Array>> tangents;
  Shape shape;
  DType dtype = DType::float32;
};

/// Number of grad traces alive on this thread (0: nothing is recorded).
extern thread_local int g_trace_depth;

inline bool recording() {
  return g_trace_depth > 0;
}

/// Number of jvp levels visible to bind on this thread (0: no tangent is pushed). While the
/// rule of level k runs, only the levels outside it are visible.
extern thread_local int g_forward_visible;

inline bool forwarding() {
  return g_forward_visible > 0;
}

/// The tangent of `a` at jvp level `level`, or null.
const Array* tangent_at(const Array& a, std::uint64_t level);

/// Gives `out` the tangent `t` at `level`. `before` is out's node before this op bound it: a node
/// made for this op takes the tangent; one shared with another array is wrapped first.
void set_tangent(Array& out, std::uint64_t level, Array t, const Node* before);

/// Forward rules outside bind (custom_jvp, custom_vjp; src/autodiff/jvp_trace.cpp): for each
/// visible jvp level at which some input of `out` has a tangent, `rule(tangents)` (zeros for
/// floating inputs without one) or the rule derived from `vjp` gives out's tangent. `prim`
/// names the rule in errors and in forward_rules_used().
void push_rule_tangents(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                        const std::function<Array(const std::vector<Array>&)>& rule,
                        const Node* before);
void push_vjp_tangents(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                       const Vjp& vjp, const Node* before);

/// Counts nodes the grad engine has recorded on this thread (tests: jvp records none).
std::uint64_t recorded_nodes();

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
