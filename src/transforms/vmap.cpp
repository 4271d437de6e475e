// loom::vmap's batched evaluation of a graph traced on one example (see loom/vmap.hpp).
//
// Every value is an Array plus whether it carries the batch; batched values always keep the
// batch on axis 0 here, and results move it to out_axes at the end. A node with a batched input
// runs, in order of preference: once on aligned operands (Batching::elementwise), its batching
// rule once on the batch (BatchRule, bound with the op), or its impl once per example.
#include "loom/vmap.hpp"

#include <string>

#include "loom/numpy/manipulation.hpp"
#include "transforms/graph.hpp"

namespace loom::detail {
namespace {

namespace jnp = loom::numpy;

struct BatchedValue {
  Array value;
  bool batched = false;  // axis 0 is the batch
};

std::string arg_name(int arg) {
  return "argument " + std::to_string(arg);
}

// An elementwise primitive broadcasts as NumPy does: give every batched operand the common
// per-example rank by inserting size-1 axes after the batch axis, then call impl once.
Array run_elementwise(const GraphNode& node, const std::vector<BatchedValue>& in,
                      std::int64_t size) {
  int rank = 0;
  for (const BatchedValue& v : in) {
    if (!v.value.valid()) continue;
    rank = std::max(rank, v.batched ? v.value.ndim() - 1 : v.value.ndim());
  }
  std::vector<Array> args;
  args.reserve(in.size());
  for (const BatchedValue& v : in) {
    if (!v.batched || v.value.ndim() - 1 == rank) {
      args.push_back(v.value);
      continue;
    }
    std::vector<std::int64_t> shape{size};
    for (int i = v.value.ndim() - 1; i < rank; ++i) shape.push_back(1);
    for (int i = 1; i < v.value.ndim(); ++i) shape.push_back(v.value.shape()[i]);
    args.push_back(jnp::reshape(v.value, shape));
  }
  return node.impl(args);
}

// A primitive with a batching rule: once on the whole batch; invalid when the rule does not
// cover this case.
Array run_rule(const BatchRule& rule, const std::vector<BatchedValue>& in) {
  std::vector<Array> args;
  std::vector<bool> batched;
  args.reserve(in.size());
  batched.reserve(in.size());
  for (const BatchedValue& v : in) {
    args.push_back(v.value);
    batched.push_back(v.batched);
  }
  return rule(args, batched);
}

// Any other primitive: once per example, stacked along a new axis 0.
Array run_loop(const GraphNode& node, const std::vector<BatchedValue>& in, std::int64_t size) {
  std::vector<Array> results;
  results.reserve(std::size_t(size));
  std::vector<Array> args(in.size());
  for (std::int64_t b = 0; b < size; ++b) {
    for (std::size_t i = 0; i < in.size(); ++i)
      args[i] = in[i].batched ? jnp::index(in[i].value, b, 0) : in[i].value;
    results.push_back(node.impl(args));
  }
  return jnp::stack(results, 0);
}

}  // namespace

VmapCounts& vmap_counts() {
  thread_local VmapCounts counts;
  return counts;
}

bool& vmap_rules_enabled() {
  thread_local bool enabled = true;
  return enabled;
}

void throw_vmap_in_axes_count(std::size_t in_axes, std::size_t args) {
  throw Error("vmap: in_axes has " + std::to_string(in_axes) + " entries but f was called with " +
              std::to_string(args) + " arguments (give one axis or std::nullopt per argument)");
}

VmapBatch vmap_prepare(const std::vector<Array>& leaves, const std::vector<int>& arg_of_leaf,
                       const std::vector<std::optional<int>>& axes) {
  VmapBatch batch;
  int size_arg = -1;
  int size_axis = 0;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const Array& x = leaves[i];
    const int arg = arg_of_leaf[i];
    if (!x.valid()) throw Error("vmap: " + arg_name(arg) + " holds an empty Array");
    if (!axes[i]) {
      batch.example.push_back(x);
      batch.batched.push_back(x);
      batch.is_batched.push_back(false);
      continue;
    }
    const int axis = *axes[i] < 0 ? *axes[i] + x.ndim() : *axes[i];
    if (axis < 0 || axis >= x.ndim()) {
      throw Error("vmap: in_axes[" + std::to_string(arg) + "] = " + std::to_string(*axes[i]) +
                  " is out of range for " + arg_name(arg) + " of shape " + x.shape().str() +
                  " (rank " + std::to_string(x.ndim()) + ")");
    }
    const std::int64_t n = x.shape()[axis];
    if (size_arg < 0) {
      size_arg = arg;
      size_axis = axis;
      batch.size = n;
    } else if (n != batch.size) {
      throw Error("vmap: mismatched batch sizes: " + arg_name(size_arg) + " has size " +
                  std::to_string(batch.size) + " along axis " + std::to_string(size_axis) +
                  " but " + arg_name(arg) + " has size " + std::to_string(n) + " along axis " +
                  std::to_string(axis) + " (shape " + x.shape().str() + ")");
    }
    if (n == 0) throw Error("vmap: " + arg_name(arg) + " has an empty batch (size 0) along axis " + std::to_string(axis));
    batch.example.push_back(jnp::index(x, 0, axis));
    batch.batched.push_back(axis == 0 ? x : jnp::moveaxis(x, axis, 0));
    batch.is_batched.push_back(true);
  }
  if (size_arg < 0) {
    throw Error("vmap: no argument is batched (every in_axes entry is std::nullopt); vmap needs "
                "at least one batched argument");
  }
  return batch;
}

std::vector<Array> vmap_evaluate(const Graph& g, const VmapBatch& batch,
                                 std::optional<int> out_axes) {
  std::vector<BatchedValue> values(g.nodes.size());
  auto get = [&](const ValueRef& r) -> BatchedValue {
    switch (r.kind) {
      case ValueRef::Kind::arg:
        return {batch.batched[std::size_t(r.index)], batch.is_batched[std::size_t(r.index)]};
      case ValueRef::Kind::constant: return {g.constants[std::size_t(r.index)], false};
      case ValueRef::Kind::node: return values[std::size_t(r.index)];
      case ValueRef::Kind::none: break;
    }
    return {};
  };
  std::vector<BatchedValue> in;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const GraphNode& node = g.nodes[i];
    in.clear();
    bool any = false;
    for (const ValueRef& r : node.inputs) {
      in.push_back(get(r));
      any |= in.back().batched;
    }
    BatchedValue out;
    if (!any) {
      std::vector<Array> args;
      for (const BatchedValue& v : in) args.push_back(v.value);
      out = {node.impl(args), false};
    } else if (node.prim.batching == Batching::elementwise) {
      out = {run_elementwise(node, in, batch.size), true};
      ++vmap_counts().elementwise[node.prim.name];
    } else {
      const BatchRule* rule = batch_rule_of(node.impl);
      if (rule != nullptr && vmap_rules_enabled()) out = {run_rule(*rule, in), true};
      if (out.value.valid()) {
        ++vmap_counts().rule[node.prim.name];
      } else {
        out = {run_loop(node, in, batch.size), true};
        ++vmap_counts().loop[node.prim.name];
      }
    }
    Shape expected = node.shape;
    if (out.batched) expected.insert(0, batch.size);
    if (out.value.shape() != expected || out.value.dtype() != node.dtype) {
      throw Error(std::string("vmap: batching ") + node.prim.name + " gave " +
                  describe_value(out.value) + " where " + std::string(dtype_name(node.dtype)) +
                  expected.str() + " was expected");
    }
    values[i] = std::move(out);
    in.clear();
    for (std::int32_t r : node.release) values[std::size_t(r)] = {};
  }
  std::vector<Array> results;
  for (std::size_t k = 0; k < g.outputs.size(); ++k) {
    BatchedValue v = get(g.outputs[k]);
    if (!out_axes) {
      if (v.batched) {
        throw Error("vmap: out_axes is std::nullopt but result leaf " + std::to_string(k) +
                    " (" + describe_value(v.value) + ") depends on a batched argument");
      }
      results.push_back(v.value);
      continue;
    }
    Array a = v.value;
    if (!v.batched) {
      Shape s = a.shape();
      s.insert(0, batch.size);
      a = jnp::broadcast_to(jnp::expand_dims(a, {0}), s);
    }
    const int rank = a.ndim();
    const int axis = *out_axes < 0 ? *out_axes + rank : *out_axes;
    if (axis < 0 || axis >= rank) {
      throw Error("vmap: out_axes = " + std::to_string(*out_axes) +
                  " is out of range for result leaf " + std::to_string(k) + " of batched shape " +
                  a.shape().str());
    }
    results.push_back(axis == 0 ? a : jnp::moveaxis(a, 0, axis));
  }
  return results;
}

}  // namespace loom::detail
