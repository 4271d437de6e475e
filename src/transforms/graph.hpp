// Private: the captured graph of loom::jit / loom::vmap (see loom/jit.hpp, detail::capture).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "detail/primitive.hpp"
#include "loom/array.hpp"
#include "loom/jit.hpp"

namespace loom::detail {

/// Where a node input or a graph output comes from.
struct ValueRef {
  enum class Kind : std::uint8_t { none, arg, constant, node };
  Kind kind = Kind::none;  // none: the op was given an empty Array
  std::int32_t index = 0;
};

struct GraphNode {
  Primitive prim;
  Impl impl;
  std::vector<ValueRef> inputs;
  Shape shape;  // of the output recorded while tracing
  DType dtype = DType::float32;
  std::vector<std::int32_t> release;  // nodes whose last use is this one (freed after it)
  // While tracing, the output shared its buffer with another value (a reshape view, an op
  // returning its input): the replay must never write into it in place.
  bool shares_buffer = false;
};

// ---- the replay plan of jit's fusion pass (src/transforms/fusion.cpp) ----------------------

/// Where a fused member reads or writes one block: an operand from outside the group (gathered
/// to the block when broadcast), a scratch block of the group, or a materialized output.
struct FusedLoc {
  enum class Kind : std::uint8_t { external, float_slot, bool_slot, output };
  Kind kind = Kind::external;
  std::int32_t index = 0;
};

/// An operand from outside the group, read as x[(i / repeat) % period] at output element i:
/// the whole array (repeat 1, period = size), a scalar (period 1), a trailing row such as a
/// Dense bias (F,) against (B, F) (repeat 1, period F) or a column (B, 1) (repeat F, period B).
struct FusedInput {
  ValueRef ref;
  DType dtype = DType::float32;
  std::int64_t repeat = 1, period = 1;
  bool full = true;  // repeat 1, period = the group's size: read in place, no gather
};

struct FusedMember {
  std::int32_t node = 0;  // the original node (its prim's block kernel)
  std::vector<FusedLoc> in;
  FusedLoc out;
};

/// A materialized value of the group: the root, or a member some later node also reads.
struct FusedOutput {
  std::int32_t node = 0;
  std::int32_t in_place = -1;  // index into inputs whose dying buffer this output reuses, or -1
};

struct FusedGroup {
  Shape shape;
  std::vector<FusedInput> inputs;
  std::vector<FusedMember> members;  // in the original order
  std::vector<FusedOutput> outputs;
  std::int32_t float_slots = 0, bool_slots = 0;
};

/// One step of the fused replay: an original node (its impl) or a fused group.
struct PlanStep {
  std::int32_t node = -1;             // >= 0: run nodes[node].impl
  std::int32_t group = -1;            // >= 0: run groups[group]
  std::vector<std::int32_t> release;  // node values whose last use is this step
};

/// What a replay learned about one arena slot (Plan::arena_state).
enum class ArenaState : std::uint8_t {
  unknown,   // not run yet
  landed,    // the node's result was written into its slot
  missed,    // the op allocated its result otherwise (its slot stays unused)
  disabled,  // the slot went to a temporary the op kept: never offered again
};

struct Plan {
  std::vector<PlanStep> steps;
  std::vector<FusedGroup> groups;
  std::size_t peak_live_bytes = 0;
  std::size_t fused_nodes = 0;     // original nodes running inside groups
  std::size_t in_place_nodes = 0;  // outputs planned into a dying input's buffer
  // The static arena (JitOptions::arena): per node, the byte offset of its value's slot when the
  // value starts a planned storage (later in-place outputs reuse that storage), else -1.
  std::vector<std::int64_t> arena_offset;
  std::vector<std::int32_t> arena_root;  // per node: the node whose slot holds its value, or -1
  std::size_t arena_bytes = 0;           // one replay's arena
  std::size_t intermediate_bytes = 0;    // values written to memory that are not results
  std::size_t planned_bytes = 0;         // of those, planned into the arena
  std::size_t no_reuse_bytes = 0;        // the arena if no two slots shared bytes
  std::size_t planned_peak_bytes = 0;    // most planned bytes alive at one step
  // Shared by the replays of every thread (relaxed: a hint, each replay checks its own slots).
  std::unique_ptr<std::atomic<ArenaState>[]> arena_state;
};

struct Graph {
  std::vector<Shape> arg_shapes;
  std::vector<DType> arg_dtypes;
  std::vector<Array> constants;
  std::vector<GraphNode> nodes;  // in execution order; only those the outputs need
  std::vector<ValueRef> outputs;
  std::size_t peak_live_bytes = 0;
  std::shared_ptr<const Plan> plan;  // jit's fused replay (null: node by node)
};

/// The Array `r` names during a replay of `g`: an argument, a constant or a node value computed
/// so far (an empty Array for Kind::none).
inline const Array& value_of(const ValueRef& r, const Graph& g, const std::vector<Array>& args,
                             const std::vector<Array>& values) {
  static const Array kNone;
  switch (r.kind) {
    case ValueRef::Kind::arg:
      return args[std::size_t(r.index)];
    case ValueRef::Kind::constant:
      return g.constants[std::size_t(r.index)];
    case ValueRef::Kind::node:
      return values[std::size_t(r.index)];
    case ValueRef::Kind::none:
      break;
  }
  return kNone;
}

/// Runs one node's impl on its inputs (gathered into `scratch`) and checks the result against
/// the shape and dtype the trace recorded. Shared by the node-by-node and the fused replay.
Array replay_node(const GraphNode& node, const Graph& g, const std::vector<Array>& args,
                  const std::vector<Array>& values, std::vector<Array>& scratch);

/// The graph's outputs once every node has run.
std::vector<Array> replay_outputs(const Graph& g, const std::vector<Array>& args,
                                  const std::vector<Array>& values);

/// Runs the plan (no transformation active: fused groups bind nothing).
std::vector<Array> run_plan(const Graph& g, const std::vector<Array>& args);
/// The static arena of a fusion plan (src/transforms/arena.cpp): fills plan's arena fields from
/// each node's step, whether it is materialized, its last reading step and whether it is a
/// result. Not `enabled`: no slots (the intermediate byte count only).
void plan_arena(const Graph& g, Plan& plan, const std::vector<std::int32_t>& step_of,
                const std::vector<char>& materialized, const std::vector<std::int32_t>& last,
                const std::vector<char>& is_output, bool enabled);

/// "float32(2, 3)", for error messages.
std::string describe_value(const Array& a);

}  // namespace loom::detail
