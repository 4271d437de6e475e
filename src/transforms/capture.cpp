// detail::capture and detail::replay: the tracing half of loom::jit and loom::vmap.
//
// While a capture runs, every bound primitive arrives at Tracer::on_primitive. Values are keyed
// by (buffer, shape, dtype): a reshape sharing its input's buffer is a different value, and an
// in-place kernel's output overwrites its input's key (the later binding wins). The tracer keeps
// every value it has seen alive, so no buffer address is recycled while it runs.
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "detail/primitive.hpp"
#include "loom/jit.hpp"
#include "transforms/graph.hpp"

namespace loom::detail {
namespace {

struct Key {
  const void* data;
  Shape shape;
  DType dtype;
  bool operator==(const Key& o) const {
    return data == o.data && dtype == o.dtype && shape == o.shape;
  }
};
struct KeyHash {
  std::size_t operator()(const Key& k) const {
    std::size_t h = std::hash<const void*>{}(k.data) ^ (std::size_t(k.dtype) * 0x9e3779b97f4a7c15ULL);
    for (std::int64_t d : k.shape) h = h * 1000003u ^ std::hash<std::int64_t>{}(d);
    return h;
  }
};
Key key_of(const Array& a) {
  return {a.raw_data(), a.shape(), a.dtype()};
}

class Tracer final : public CaptureSink {
 public:
  struct Value {
    ValueRef ref;
    bool traced = false;  // computed from a traced argument
  };

  Tracer(const char* transform, Tracer* outer) : transform_(transform), outer_(outer) {}

  void add_arg(const Array& a, bool traced) {
    const auto index = static_cast<std::int32_t>(graph_.arg_shapes.size());
    graph_.arg_shapes.push_back(a.shape());
    graph_.arg_dtypes.push_back(a.dtype());
    bind_value(a, {ValueRef::Kind::arg, index}, traced);
  }

  void on_primitive(const Primitive& prim, const Array& out,
                    const std::vector<const Array*>& inputs, const Impl& impl) override {
    GraphNode node{.prim = prim,
                   .impl = impl,
                   .inputs = {},
                   .shape = out.shape(),
                   .dtype = out.dtype(),
                   .release = {}};
    bool traced = false;
    node.inputs.reserve(inputs.size());
    for (const Array* in : inputs) {
      if (in == nullptr || !in->valid()) {
        node.inputs.push_back({});
        continue;
      }
      auto [ref, t] = resolve(*in, prim.name);
      node.inputs.push_back(ref);
      traced |= t;
    }
    const auto index = static_cast<std::int32_t>(graph_.nodes.size());
    graph_.nodes.push_back(std::move(node));
    node_data_.push_back(out.raw_data());
    bind_value(out, {ValueRef::Kind::node, index}, traced);
  }

  /// Is `a` a value computed from a traced argument?
  const Value* find(const Array& a) const {
    if (!a.valid()) return nullptr;
    auto it = values_.find(key_of(a));
    return it == values_.end() ? nullptr : &it->second;
  }

  const char* transform() const { return transform_; }
  Tracer* outer() const { return outer_; }

  std::shared_ptr<const Graph> finish(const std::vector<Array>& outputs) {
    for (const Array& o : outputs) {
      graph_.outputs.push_back(o.valid() ? resolve(o, "the result").first : ValueRef{});
    }
    for (std::size_t i = 0; i < graph_.nodes.size(); ++i)
      graph_.nodes[i].shares_buffer = buffer_values_[node_data_[i]] > 1;
    eliminate_dead_code();
    return std::make_shared<const Graph>(std::move(graph_));
  }

 private:
  void bind_value(const Array& a, ValueRef ref, bool traced) {
    values_[key_of(a)] = {ref, traced};
    ++buffer_values_[a.raw_data()];
    if (traced) traced_buffers_[a.raw_data()] = a;
    alive_.push_back(a.detached());
  }

  std::pair<ValueRef, bool> resolve(const Array& a, const char* consumer) {
    const Key k = key_of(a);
    if (auto it = values_.find(k); it != values_.end()) return {it->second.ref, it->second.traced};
    if (auto it = traced_buffers_.find(k.data); it != traced_buffers_.end()) {
      throw Error(std::string(transform_) + ": " + consumer + " received " + describe_value(a) +
                  ", which shares the buffer of the traced value " +
                  describe_value(it->second) +
                  " but was made by an op that does not bind itself as a primitive "
                  "(detail::bind); that op is invisible to " + transform_ +
                  " and its result would be baked in as a constant");
    }
    auto [it, inserted] =
        constant_index_.try_emplace(k, static_cast<std::int32_t>(graph_.constants.size()));
    if (inserted) {
      graph_.constants.push_back(a.detached());
      ++buffer_values_[a.raw_data()];
    }
    return {{ValueRef::Kind::constant, it->second}, false};
  }

  // Keeps the nodes the outputs need, renumbered in order; records where each value dies and
  // the peak bytes of intermediates alive at once.
  void eliminate_dead_code() {
    const std::size_t n = graph_.nodes.size();
    std::vector<char> live(n, 0);
    for (const ValueRef& r : graph_.outputs)
      if (r.kind == ValueRef::Kind::node) live[std::size_t(r.index)] = 1;
    for (std::size_t i = n; i-- > 0;) {
      if (!live[i]) continue;
      for (const ValueRef& r : graph_.nodes[i].inputs)
        if (r.kind == ValueRef::Kind::node) live[std::size_t(r.index)] = 1;
    }
    std::vector<std::int32_t> renumber(n, -1);
    std::vector<GraphNode> kept;
    for (std::size_t i = 0; i < n; ++i) {
      if (!live[i]) continue;
      renumber[i] = static_cast<std::int32_t>(kept.size());
      kept.push_back(std::move(graph_.nodes[i]));
    }
    auto remap = [&](ValueRef& r) {
      if (r.kind == ValueRef::Kind::node) r.index = renumber[std::size_t(r.index)];
    };
    for (GraphNode& node : kept)
      for (ValueRef& r : node.inputs) remap(r);
    for (ValueRef& r : graph_.outputs) remap(r);

    // Last use of each node's value; outputs live to the end (-1 means "never released").
    std::vector<std::int32_t> last(kept.size(), -2);
    for (std::size_t i = 0; i < kept.size(); ++i)
      for (const ValueRef& r : kept[i].inputs)
        if (r.kind == ValueRef::Kind::node) last[std::size_t(r.index)] = std::int32_t(i);
    for (const ValueRef& r : graph_.outputs)
      if (r.kind == ValueRef::Kind::node) last[std::size_t(r.index)] = -1;
    std::size_t live_bytes = 0, peak = 0;
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (last[i] == -2) last[i] = std::int32_t(i);  // unused (an output of a kept node)
      if (last[i] >= 0) kept[std::size_t(last[i])].release.push_back(std::int32_t(i));
    }
    for (std::size_t i = 0; i < kept.size(); ++i) {
      live_bytes += std::size_t(kept[i].shape.numel()) * itemsize(kept[i].dtype);
      peak = std::max(peak, live_bytes);
      for (std::int32_t r : kept[i].release)
        live_bytes -= std::size_t(kept[std::size_t(r)].shape.numel()) * itemsize(kept[std::size_t(r)].dtype);
    }
    graph_.nodes = std::move(kept);
    graph_.peak_live_bytes = peak;
  }

  const char* transform_;
  Tracer* outer_;
  Graph graph_;
  std::unordered_map<Key, Value, KeyHash> values_;
  std::unordered_map<Key, std::int32_t, KeyHash> constant_index_;
  std::unordered_map<const void*, Array> traced_buffers_;
  std::vector<Array> alive_;
  std::vector<const void*> node_data_;                  // each node's output buffer
  std::unordered_map<const void*, int> buffer_values_;  // values seen per buffer
};

thread_local Tracer* g_tracer = nullptr;  // the innermost jit/vmap tracer on this thread

void on_host_read(const Array& a, const char* what) {
  for (Tracer* t = g_tracer; t != nullptr; t = t->outer()) {
    const Tracer::Value* v = t->find(a);
    if (v == nullptr || !v->traced) continue;
    const std::string name = t->transform();
    throw Error(
        name + ": Array." + what + "() reads " +
        (name == "vmap" ? "a batched value " : "a traced value ") + describe_value(a) +
        " on the host while " + name + " traces the function; its value is only known when the " +
        (name == "vmap" ? "batch is evaluated" : "graph is replayed") +
        ". Express a branch on it with lax::cond or jnp::where instead of host control flow");
  }
}

// Installs a tracer as the innermost capture and host-read hook; restores the outer ones.
class Installed {
 public:
  explicit Installed(Tracer* t)
      : saved_sink_(current_capture()), saved_tracer_(g_tracer), saved_hook_(host_read_hook()) {
    current_capture() = t;
    g_tracer = t;
    host_read_hook() = &on_host_read;
    ++g_transform_depth;
  }
  ~Installed() {
    --g_transform_depth;
    host_read_hook() = saved_hook_;
    g_tracer = saved_tracer_;
    current_capture() = saved_sink_;
  }
  Installed(const Installed&) = delete;
  Installed& operator=(const Installed&) = delete;

 private:
  CaptureSink* saved_sink_;
  Tracer* saved_tracer_;
  HostReadHook saved_hook_;
};

}  // namespace

std::string describe_value(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

Captured capture(const std::function<std::vector<Array>(const std::vector<Array>&)>& body,
                 const std::vector<Array>& args, const std::vector<bool>& traced,
                 const char* transform) {
  Tracer tracer(transform, g_tracer);
  std::vector<Array> copies;
  copies.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    const Array& a = args[i];
    if (!a.valid()) throw Error(std::string(transform) + ": argument leaf " + std::to_string(i) + " is an empty Array");
    // A fresh buffer per argument: two arguments passed the same Array stay two graph inputs.
    Array c = Array::empty(a.shape(), a.dtype());
    std::memcpy(c.raw_mutable_data(), a.raw_data(), a.nbytes());
    c.set_node(a.node());
    tracer.add_arg(c, traced.at(i));
    copies.push_back(std::move(c));
  }
  std::vector<Array> outputs;
  {
    Installed installed(&tracer);
    outputs = body(copies);
  }
  return {tracer.finish(outputs), std::move(outputs)};
}

std::vector<Array> replay(const Graph& g, const std::vector<Array>& args) {
  if (args.size() != g.arg_shapes.size()) {
    throw Error("jit: the graph takes " + std::to_string(g.arg_shapes.size()) +
                " argument leaves, got " + std::to_string(args.size()));
  }
  // A transformation around the replay must see every primitive bind: node by node then.
  if (g.plan && !transforming()) return run_plan(g, args);
  std::vector<Array> values(g.nodes.size());
  std::vector<Array> in;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const GraphNode& node = g.nodes[i];
    values[i] = replay_node(node, g, args, values, in);
    for (std::int32_t r : node.release) values[std::size_t(r)] = Array();
  }
  return replay_outputs(g, args, values);
}

Array replay_node(const GraphNode& node, const Graph& g, const std::vector<Array>& args,
                  const std::vector<Array>& values, std::vector<Array>& scratch) {
  scratch.clear();
  for (const ValueRef& r : node.inputs) scratch.push_back(value_of(r, g, args, values));
  Array out = node.impl(scratch);
  scratch.clear();
  if (out.shape() != node.shape || out.dtype() != node.dtype) {
    throw Error(std::string("jit: replaying ") + node.prim.name + " gave " + describe_value(out) +
                " where the trace recorded " + std::string(dtype_name(node.dtype)) +
                node.shape.str());
  }
  return out;
}

std::vector<Array> replay_outputs(const Graph& g, const std::vector<Array>& args,
                                  const std::vector<Array>& values) {
  std::vector<Array> out;
  out.reserve(g.outputs.size());
  for (const ValueRef& r : g.outputs) out.push_back(value_of(r, g, args, values));
  return out;
}

GraphInfo graph_info(const Graph& g) {
  GraphInfo info{.num_args = g.arg_shapes.size(),
                 .num_nodes = g.nodes.size(),
                 .num_constants = g.constants.size(),
                 .peak_live_bytes = g.peak_live_bytes};
  info.num_steps = g.nodes.size();
  if (g.plan) {
    info.num_steps = g.plan->steps.size();
    info.num_fused_groups = g.plan->groups.size();
    info.num_fused_nodes = g.plan->fused_nodes;
    info.num_in_place = g.plan->in_place_nodes;
    info.peak_live_bytes = g.plan->peak_live_bytes;
    info.unfused_peak_live_bytes = g.peak_live_bytes;
    const Plan& p = *g.plan;
    for (const FusedGroup& fg : p.groups)
      for (const FusedMember& m : fg.members) {
        const GraphNode& node = g.nodes[std::size_t(m.node)];
        if (!node.prim.block.fusable() && block_impl_of(node.impl) != nullptr)
          ++info.num_fused_updates;
      }
    info.intermediate_bytes = p.intermediate_bytes;
    info.arena_planned_bytes = p.planned_bytes;
    info.arena_bytes = p.arena_bytes;
    info.arena_no_reuse_bytes = p.no_reuse_bytes;
    info.arena_peak_live_bytes = p.planned_peak_bytes;
    for (std::size_t i = 0; i < p.arena_root.size(); ++i) {
      const std::int32_t r = p.arena_root[i];
      if (r >= 0 && p.arena_state[std::size_t(r)].load(std::memory_order_relaxed) ==
                        ArenaState::landed)
        info.arena_landed_bytes +=
            std::size_t(g.nodes[i].shape.numel()) * itemsize(g.nodes[i].dtype);
    }
  }
  return info;
}

bool capturing() {
  return current_capture() != nullptr;
}

}  // namespace loom::detail
