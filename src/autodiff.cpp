// Reverse-mode autodiff: trace recording and the backward pass (see loom/autodiff.hpp).
//
// While detail::trace runs f, every op whose inputs descend from the traced leaves attaches a
// Node (its parents and its pullback) to its output. The pullback returned by trace walks those
// nodes in reverse topological order. Nodes belong to one trace id; once the trace has returned,
// new ops no longer record against it, so nothing outlives the call but the values returned.
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

thread_local std::vector<std::uint64_t> g_active_traces;
std::atomic<std::uint64_t> g_next_trace_id{1};

bool is_active(std::uint64_t id) {
  return std::find(g_active_traces.begin(), g_active_traces.end(), id) != g_active_traces.end();
}

// Suspends recording (the backward pass is not itself traced).
struct NoRecordGuard {
  int saved = g_trace_depth;
  NoRecordGuard() { g_trace_depth = 0; }
  ~NoRecordGuard() { g_trace_depth = saved; }
};

// Nested differentiation (grad of a function that calls grad on traced values) would need the
// backward pass itself to be traced; until it is, refuse rather than drop terms silently.
[[noreturn]] void throw_nested(const char* what) {
  throw Error(std::string("grad: nested differentiation is not supported yet (") + what +
              "); compute the inner gradient outside the outer grad, or use stop_gradient");
}

template <typename Inputs>
void record_generic(Array& out, const Inputs& inputs, Pullback pullback) {
  if (!is_floating(out.dtype())) return;  // integer/bool outputs are not differentiated
  std::uint64_t trace_id = 0;
  for (const Array* in : inputs) {
    const auto& n = in->node();
    if (n && n->trace_id != trace_id && is_active(n->trace_id)) {
      if (trace_id != 0) throw_nested("an op mixes values of an outer and an inner grad");
      trace_id = n->trace_id;
    }
  }
  if (trace_id == 0) return;
  auto node = std::make_shared<Node>();
  node->parents.reserve(inputs.size());
  for (const Array* in : inputs) {
    const auto& n = in->node();
    node->parents.push_back(n && n->trace_id == trace_id ? n : nullptr);
  }
  node->pullback = std::move(pullback);
  node->trace_id = trace_id;
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

}  // namespace

void record_impl(Array& out, std::initializer_list<const Array*> inputs, Pullback pullback) {
  record_generic(out, inputs, std::move(pullback));
}

void record_impl(Array& out, const std::vector<Array>& inputs, Pullback pullback) {
  std::vector<const Array*> ptrs;
  ptrs.reserve(inputs.size());
  for (const Array& a : inputs) ptrs.push_back(&a);
  record_generic(out, ptrs, std::move(pullback));
}

void record_vjp(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                Vjp vjp) {
  Array saved = prim.vjp_uses_output ? out.detached() : Array();
  record_generic(out, inputs, [vjp = std::move(vjp), saved](const Array& g) {
    return vjp(g, saved);
  });
}

Traced trace(const std::function<Tree(const std::vector<Array>&)>& f,
             const std::vector<Array>& leaves) {
  const std::uint64_t id = g_next_trace_id.fetch_add(1);
  std::vector<std::shared_ptr<Node>> leaf_nodes;
  std::vector<Array> traced;
  traced.reserve(leaves.size());
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    check_valid(leaves[i], "grad");
    if (leaves[i].node() && is_active(leaves[i].node()->trace_id)) {
      throw_nested("the argument of an inner grad depends on an outer grad's argument");
    }
    Array a = leaves[i].detached();
    auto node = std::make_shared<Node>();
    node->trace_id = id;
    node->leaf_index = static_cast<std::int64_t>(i);
    node->shape = a.shape();
    node->dtype = a.dtype();
    if (is_floating(a.dtype())) a.set_node(node);
    leaf_nodes.push_back(node);
    traced.push_back(std::move(a));
  }

  g_active_traces.push_back(id);
  ++g_trace_depth;
  ++g_transform_depth;
  Tree output;
  try {
    output = f(traced);
  } catch (...) {
    --g_transform_depth;
    --g_trace_depth;
    g_active_traces.pop_back();
    throw;
  }
  --g_transform_depth;
  --g_trace_depth;
  g_active_traces.pop_back();

  auto pullback = [leaf_nodes, output, id](const Tree& cotangent) {
    NoRecordGuard guard;
    auto outs = tree_leaves(output);
    auto cts_in = tree_leaves(cotangent);
    if (!same_structure(tree_map([](const Array&) { return Array(); }, output),
                        tree_map([](const Array&) { return Array(); }, cotangent)) ||
        outs.size() != cts_in.size()) {
      throw Error("vjp: the cotangent's tree structure differs from the output's");
    }
    // Topological order of every node reachable from the outputs (iterative DFS).
    std::vector<Node*> order;
    std::unordered_set<Node*> seen;
    std::vector<std::pair<Node*, std::size_t>> stack;
    for (const Array& o : outs) {
      Node* n = o.node().get();
      if (!n || n->trace_id != id || seen.count(n)) continue;
      seen.insert(n);
      stack.emplace_back(n, 0);
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->parents.size()) {
          Node* p = node->parents[next++].get();
          if (p && !seen.count(p)) {
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
      if (cts_in[i].shape() != outs[i].shape()) {
        throw Error("vjp: cotangent of shape " + cts_in[i].shape().str() +
                    " for an output of shape " + outs[i].shape().str());
      }
      if (n && n->trace_id == id) accumulate(cts, n, cts_in[i]);
    }
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* node = *it;
      if (!node->pullback) continue;
      auto found = cts.find(node);
      if (found == cts.end()) continue;
      Array g = found->second;
      cts.erase(found);  // free intermediate cotangents early
      std::vector<Array> grads = node->pullback(g);
      for (std::size_t k = 0; k < node->parents.size() && k < grads.size(); ++k) {
        Node* p = node->parents[k].get();
        if (p && grads[k].valid()) accumulate(cts, p, std::move(grads[k]));
      }
    }
    std::vector<Array> result;
    result.reserve(leaf_nodes.size());
    for (const auto& leaf : leaf_nodes) {
      auto it = cts.find(leaf.get());
      result.push_back(it != cts.end() ? it->second : numpy::zeros(leaf->shape, leaf->dtype));
    }
    return result;
  };
  return Traced{std::move(output), std::move(pullback)};
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
