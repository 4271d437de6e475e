// Reverse-mode autodiff: the graph and the backward pass (see loom/autodiff.hpp, detail/tape.hpp).
//
// While a grad trace is active, every op with an input that carries history attaches a Node
// (parents, VJP, the largest trace id it descends from) to its output. One graph is shared by
// nested traces. The pullback of trace T walks, in reverse topological order, only the nodes
// stamped >= T and stops at T's leaves. The backward pass is itself recorded whenever some
// trace is still active: VJPs get their op's output re-attached to its node and their residuals
// carry history, so grad of grad, hessians and jvp (by transposition) flow through it.
#include "loom/autodiff.hpp"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy.hpp"

namespace loom {
namespace detail {

thread_local int g_trace_depth = 0;

namespace {

thread_local std::uint64_t g_recorded_nodes = 0;

std::atomic<std::uint64_t> g_next_trace_id{1};

template <typename Inputs>
void attach_generic(Array& out, const Inputs& inputs, Vjp vjp, bool keep_output) {
  if (!is_floating(out.dtype())) return;  // integer/bool outputs are not differentiated
  std::uint64_t stamp = 0;
  for (const Array* in : inputs) {
    if (const auto& n = in->node()) stamp = std::max(stamp, n->stamp);
  }
  if (stamp == 0) return;  // no input has history
  auto node = std::make_shared<Node>();
  ++g_recorded_nodes;
  node->parents.reserve(inputs.size());
  for (const Array* in : inputs) node->parents.push_back(in->node());
  node->vjp = std::move(vjp);
  if (keep_output) node->saved_output = out.detached();
  node->stamp = stamp;
  node->shape = out.shape();
  node->dtype = out.dtype();
  out.set_node(std::move(node));
}

void accumulate(std::unordered_map<Node*, Array>& cts, Node* node, Array g) {
  if (g.dtype() != node->dtype) g = g.astype(node->dtype);
  if (g.shape() != node->shape) {
    throw Error("grad: internal VJP produced a cotangent of shape " + g.shape().str() +
                " for a value of shape " + node->shape.str());
  }
  auto it = cts.find(node);
  if (it == cts.end())
    cts.emplace(node, std::move(g));
  else
    it->second = numpy::add(it->second, g);
}

// The backward pass of trace `id`: cotangents of its leaves given cotangents of `outs`.
// `sparse`: an invalid Array (not zeros) for a leaf that receives no cotangent.
std::vector<Array> backward(std::uint64_t id, const std::vector<std::shared_ptr<Node>>& leaves,
                            const std::vector<Array>& outs, const std::vector<Array>& cts_in,
                            bool sparse) {
  // Reverse topological order of the nodes that may depend on this trace (iterative DFS).
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, std::size_t>> stack;
  for (const Array& o : outs) {
    Node* n = o.node().get();
    if (!n || n->stamp < id || seen.count(n)) continue;
    seen.insert(n);
    stack.emplace_back(n, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (node->leaf_of != id && next < node->parents.size()) {
        Node* p = node->parents[next++].get();
        if (p && p->stamp >= id && !seen.count(p)) {
          seen.insert(p);
          stack.emplace_back(p, 0);
        }
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  std::unordered_map<Node*, Array> cts;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    Node* n = outs[i].node().get();
    if (n && n->stamp >= id) accumulate(cts, n, cts_in[i]);
  }
  // Recorded (and tangents pushed through it) when an outer grad or jvp sees the result.
  const bool higher_order = recording() || forwarding();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    if (node->leaf_of == id || !node->vjp) continue;
    auto found = cts.find(node);
    if (found == cts.end()) continue;
    Array g = std::move(found->second);
    cts.erase(found);  // free intermediate cotangents early
    Array out = node->saved_output;
    if (higher_order && out.valid()) out.set_node(node->shared_from_this());
    std::vector<Array> grads = node->vjp(g, out);
    for (std::size_t k = 0; k < node->parents.size() && k < grads.size(); ++k) {
      Node* p = node->parents[k].get();
      if (p && p->stamp >= id && grads[k].valid()) accumulate(cts, p, std::move(grads[k]));
    }
  }
  std::vector<Array> result;
  result.reserve(leaves.size());
  for (const auto& leaf : leaves) {
    auto it = cts.find(leaf.get());
    if (it == cts.end() && sparse) {
      result.emplace_back();
      continue;
    }
    Array r = it != cts.end() ? it->second : numpy::zeros(leaf->shape, leaf->dtype);
    result.push_back(higher_order ? r : r.detached());
  }
  return result;
}

}  // namespace

std::uint64_t recorded_nodes() {
  return g_recorded_nodes;
}

bool tracing() {
  return recording() || forwarding();
}

void record_vjp(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                Vjp vjp) {
  attach_generic(out, inputs, std::move(vjp), prim.vjp_uses_output);
}

void attach(Array& out, const std::vector<const Array*>& inputs, Vjp vjp, bool keep_output) {
  if (recording()) attach_generic(out, inputs, std::move(vjp), keep_output);
}

Traced trace(const std::function<Tree(const std::vector<Array>&)>& f,
             const std::vector<Array>& leaves) {
  const std::uint64_t id = g_next_trace_id.fetch_add(1);
  std::vector<std::shared_ptr<Node>> leaf_nodes;
  std::vector<Array> traced;
  traced.reserve(leaves.size());
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    check_valid(leaves[i], "grad");
    Array a = leaves[i].detached();
    auto node = std::make_shared<Node>();
    node->stamp = id;
    node->leaf_of = id;
    node->leaf_index = static_cast<std::int64_t>(i);
    node->shape = a.shape();
    node->dtype = a.dtype();
    if (const auto& outer = leaves[i].node()) {
      // An outer trace's value: its gradient flows through (identity); its jvp tangents stay.
      node->tangents = outer->tangents;
      if (outer->stamp > 0) {
        node->parents.push_back(outer);
        node->vjp = [](const Array& g, const Array&) { return std::vector<Array>{g}; };
      }
    }
    if (is_floating(a.dtype())) a.set_node(node);
    leaf_nodes.push_back(std::move(node));
    traced.push_back(std::move(a));
  }

  struct Depth {
    Depth() {
      ++g_trace_depth;
      ++g_transform_depth;
    }
    ~Depth() {
      --g_transform_depth;
      --g_trace_depth;
    }
  };
  Tree output;
  {
    Depth depth;
    output = f(traced);
  }

  auto pullback = [leaf_nodes = std::move(leaf_nodes), output, id](const Tree& cotangent,
                                                                   bool sparse) {
    auto outs = tree_leaves(output);
    auto cts_in = tree_leaves(cotangent);
    if (!same_structure(tree_map([](const Array&) { return Array(); }, output),
                        tree_map([](const Array&) { return Array(); }, cotangent)) ||
        outs.size() != cts_in.size()) {
      throw Error("vjp: the cotangent's tree structure differs from the output's");
    }
    for (std::size_t i = 0; i < outs.size(); ++i) {
      if (cts_in[i].shape() != outs[i].shape()) {
        throw Error("vjp: cotangent of shape " + cts_in[i].shape().str() +
                    " for an output of shape " + outs[i].shape().str());
      }
    }
    return backward(id, leaf_nodes, outs, cts_in, sparse);
  };
  auto shared = std::make_shared<decltype(pullback)>(std::move(pullback));
  return Traced{std::move(output), [shared](const Tree& ct) { return (*shared)(ct, false); },
                [shared](const Tree& ct) { return (*shared)(ct, true); }};
}

void check_scalar_output(const Array& out, const char* fn_name) {
  if (out.ndim() != 0 || !is_floating(out.dtype())) {
    throw Error(
        std::string(fn_name) +
        ": the differentiated function must return a scalar (shape ()) floating array, got " +
        dtype_name(out.dtype()) + out.shape().str());
  }
}

namespace {
[[noreturn]] void throw_int_input(DType dtype, const char* fn_name, const std::string& where) {
  // jax/_src/api.py _check_input_dtype_revderiv raises the same text as a TypeError.
  throw Error(std::string(fn_name) +
              " requires real- or complex-valued inputs (input dtype that is a sub-dtype of "
              "np.inexact), but got " +
              dtype_name(dtype) + where +
              ". If you want to use Boolean- or integer-valued inputs, use vjp or set "
              "allow_int to True (GradOptions{.allow_int = true}).");
}
}  // namespace

void check_differentiable_input(const Array& x, const char* fn_name) {
  check_valid(x, fn_name);
  if (!is_floating(x.dtype())) throw_int_input(x.dtype(), fn_name, "");
}

void check_differentiable_input(const Tree& x, const char* fn_name) {
  for (const auto& [path, leaf] : tree_leaves_with_path(x)) {
    check_valid(leaf, fn_name);
    if (is_floating(leaf.dtype())) continue;
    std::string p;
    for (const auto& k : path) p += (p.empty() ? "" : "/") + k;
    throw_int_input(leaf.dtype(), fn_name,
                    " for the leaf at \"" + (p.empty() ? std::string("<root>") : p) + "\"");
  }
}

Array unbroadcast(const Array& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int lead = g.ndim() - shape.size();
  std::vector<int> axes;
  for (int i = 0; i < g.ndim(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(i);
  }
  Array s = axes.empty() ? g : numpy::sum(g, axes);
  return numpy::reshape(s, shape.to_vector());
}

}  // namespace detail

Array stop_gradient(const Array& x) {
  return x.detached();
}

Tree stop_gradient(const Tree& x) {
  return tree_map([](const Array& a) { return a.detached(); }, x);
}

}  // namespace loom
