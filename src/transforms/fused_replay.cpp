// jit's fused replay: runs the plan of the fusion pass (src/transforms/fusion.cpp), a fused
// group block by block with each member's block kernel, and prints plans (graph_str).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "detail/allocator.hpp"
#include "detail/dispatch.hpp"
#include "loom/jit.hpp"
#include "transforms/graph.hpp"

namespace loom::detail {
namespace {

constexpr std::int64_t kBlock = 1024;          // elements per block (4 KiB of float32)
constexpr std::int64_t kFusedGrain = 1 << 14;  // elements per thread before going parallel

template <typename T>
void gather(const T* src, std::int64_t repeat, std::int64_t period, std::int64_t start,
            std::int64_t n, T* dst) {
  if (period == 1) {
    std::fill(dst, dst + n, src[0]);
  } else if (repeat == 1) {
    for (std::int64_t i = 0, j = start % period; i < n; j = 0) {
      const std::int64_t len = std::min(period - j, n - i);
      std::copy(src + j, src + j + len, dst + i);
      i += len;
    }
  } else {
    for (std::int64_t i = 0, pos = start; i < n;) {
      const std::int64_t len = std::min(repeat - pos % repeat, n - i);
      std::fill(dst + i, dst + i + len, src[(pos / repeat) % period]);
      i += len;
      pos += len;
    }
  }
}

// One replay's arena: the buffer, allocated at the first planned value (so that a replay
// whose planned values all miss costs nothing) and replaced when an op kept a slot it was given.
class Arena {
 public:
  Arena(const Plan& plan, const Graph& g) : plan_(plan), g_(g), saved_(set_arena_target(nullptr)) {}
  ~Arena() { set_arena_target(saved_); }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  /// Runs `make` (which allocates node `v`'s value) with v's slot offered, if it has one.
  template <typename Make>
  Array run(std::int32_t v, Make&& make) {
    const std::int64_t offset =
        plan_.arena_offset.empty() ? -1 : plan_.arena_offset[std::size_t(v)];
    std::atomic<ArenaState>& state = plan_.arena_state[std::size_t(v)];
    if (offset < 0 || state.load(std::memory_order_relaxed) == ArenaState::disabled) return make();
    if (!buffer_) buffer_ = Buffer::allocate(plan_.arena_bytes);
    const GraphNode& node = g_.nodes[std::size_t(v)];
    ArenaTarget target{
        .arena = buffer_,
        .offset = std::size_t(offset),
        .cap = buffer_capacity(std::size_t(node.shape.numel()) * itemsize(node.dtype)),
        .used = false,
        .given = {}};
    set_arena_target(&target);
    Array out;
    try {
      out = make();
    } catch (...) {
      set_arena_target(nullptr);
      throw;
    }
    set_arena_target(nullptr);
    const void* slot = static_cast<const char*>(buffer_->data) + offset;
    if (out.raw_data() == slot) {
      state.store(ArenaState::landed, std::memory_order_relaxed);
    } else if (target.used && !target.given.expired()) {
      // A temporary the op keeps holds the slot: later values must not be placed over it.
      state.store(ArenaState::disabled, std::memory_order_relaxed);
      buffer_ = Buffer::allocate(plan_.arena_bytes);
    } else {
      state.store(ArenaState::missed, std::memory_order_relaxed);
    }
    return out;
  }

 private:
  const Plan& plan_;
  const Graph& g_;
  ArenaTarget* saved_;
  std::shared_ptr<Buffer> buffer_;
};

void run_group(const FusedGroup& fg, const Graph& g, std::vector<Array>& values,
               const std::vector<Array>& args, Arena& arena) {
  std::vector<const void*> in(fg.inputs.size());
  for (std::size_t i = 0; i < fg.inputs.size(); ++i)
    in[i] = value_of(fg.inputs[i].ref, g, args, values).raw_data();
  std::vector<Array> outs(fg.outputs.size());
  std::vector<void*> out(fg.outputs.size());
  for (std::size_t k = 0; k < fg.outputs.size(); ++k) {
    const FusedOutput& o = fg.outputs[k];
    if (o.in_place >= 0) {
      Array& src = values[std::size_t(fg.inputs[std::size_t(o.in_place)].ref.index)];
      if (src.unique()) outs[k] = src;  // else someone kept a handle: out of place
    }
    if (!outs[k].valid()) {
      const DType dtype = g.nodes[std::size_t(o.node)].dtype;
      // An in-place output whose input is still held elsewhere takes no slot (its slot is the
      // input's, still in use).
      outs[k] = o.in_place >= 0 ? Array::empty(fg.shape, dtype)
                                : arena.run(o.node, [&] { return Array::empty(fg.shape, dtype); });
    }
    out[k] = outs[k].raw_mutable_data();
  }
  // Members with a parameterized block closure (optimizer rules) instead of a BlockKernel.
  std::vector<const BlockImpl*> closures(fg.members.size(), nullptr);
  std::size_t max_arity = 0;
  for (std::size_t mi = 0; mi < fg.members.size(); ++mi) {
    const GraphNode& node = g.nodes[std::size_t(fg.members[mi].node)];
    if (!node.prim.block.fusable()) closures[mi] = block_impl_of(node.impl);
    max_arity = std::max(max_arity, fg.members[mi].in.size());
  }
  parallel_for(
      fg.shape.numel(),
      [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> fslots(std::size_t((fg.float_slots + 1) * kBlock));
        std::unique_ptr<bool[]> bslots =
            std::make_unique<bool[]>(std::size_t((fg.bool_slots + 1) * kBlock));
        std::vector<std::vector<float>> fgather(fg.inputs.size());
        std::vector<std::unique_ptr<bool[]>> bgather(fg.inputs.size());
        std::vector<void*> cur(fg.inputs.size());
        std::vector<const float*> operands(max_arity);
        for (std::size_t i = 0; i < fg.inputs.size(); ++i) {
          if (fg.inputs[i].full) continue;
          if (fg.inputs[i].dtype == DType::bool_) {
            bgather[i] = std::make_unique<bool[]>(std::size_t(kBlock));
            cur[i] = bgather[i].get();
          } else {
            fgather[i].resize(std::size_t(kBlock));
            cur[i] = fgather[i].data();
          }
        }
        for (std::int64_t s = begin; s < end; s += kBlock) {
          const std::int64_t n = std::min(kBlock, end - s);
          for (std::size_t i = 0; i < fg.inputs.size(); ++i) {
            const FusedInput& fi = fg.inputs[i];
            if (fi.full) {
              cur[i] = const_cast<char*>(static_cast<const char*>(in[i])) +
                       s * std::int64_t(itemsize(fi.dtype));
            } else if (fi.period > 1 || s == begin) {  // a scalar is filled once
              if (fi.dtype == DType::bool_)
                gather(static_cast<const bool*>(in[i]), fi.repeat, fi.period, s, n,
                       bgather[i].get());
              else
                gather(static_cast<const float*>(in[i]), fi.repeat, fi.period, s, n,
                       fgather[i].data());
            }
          }
          auto at = [&](const FusedLoc& l) -> void* {
            switch (l.kind) {
              case FusedLoc::Kind::external:
                return cur[std::size_t(l.index)];
              case FusedLoc::Kind::float_slot:
                return fslots.data() + l.index * kBlock;
              case FusedLoc::Kind::bool_slot:
                return bslots.get() + l.index * kBlock;
              case FusedLoc::Kind::output: {
                const auto k = std::size_t(l.index);
                const std::size_t item = itemsize(g.nodes[std::size_t(fg.outputs[k].node)].dtype);
                return static_cast<char*>(out[k]) + std::size_t(s) * item;
              }
            }
            return nullptr;
          };
          for (std::size_t mi = 0; mi < fg.members.size(); ++mi) {
            const FusedMember& m = fg.members[mi];
            const BlockKernel& k = g.nodes[std::size_t(m.node)].prim.block;
            void* o = at(m.out);
            if (closures[mi] != nullptr) {
              for (std::size_t a = 0; a < m.in.size(); ++a)
                operands[a] = static_cast<const float*>(at(m.in[a]));
              closures[mi]->block(operands.data(), static_cast<float*>(o), n);
            } else if (k.unary) {
              k.unary(static_cast<const float*>(at(m.in[0])), static_cast<float*>(o), n);
            } else if (k.binary) {
              k.binary(static_cast<const float*>(at(m.in[0])),
                       static_cast<const float*>(at(m.in[1])), static_cast<float*>(o), n);
            } else if (k.compare) {
              k.compare(static_cast<const float*>(at(m.in[0])),
                        static_cast<const float*>(at(m.in[1])), static_cast<bool*>(o), n);
            } else {
              k.select(static_cast<const bool*>(at(m.in[0])),
                       static_cast<const float*>(at(m.in[1])),
                       static_cast<const float*>(at(m.in[2])), static_cast<float*>(o), n);
            }
          }
        }
      },
      kFusedGrain);
  for (std::size_t k = 0; k < fg.outputs.size(); ++k)
    values[std::size_t(fg.outputs[k].node)] = std::move(outs[k]);
}

std::string ref_str(const ValueRef& r) {
  switch (r.kind) {
    case ValueRef::Kind::arg:
      return "a" + std::to_string(r.index);
    case ValueRef::Kind::constant:
      return "c" + std::to_string(r.index);
    case ValueRef::Kind::node:
      return "%" + std::to_string(r.index);
    case ValueRef::Kind::none:
      break;
  }
  return "_";
}

std::string node_str(const Graph& g, std::size_t i) {
  const GraphNode& n = g.nodes[i];
  std::string s = "%" + std::to_string(i) + " = " + n.prim.name + "(";
  for (std::size_t k = 0; k < n.inputs.size(); ++k) s += (k ? ", " : "") + ref_str(n.inputs[k]);
  return s + ") " + dtype_name(n.dtype) + n.shape.str();
}

}  // namespace

std::vector<Array> run_plan(const Graph& g, const std::vector<Array>& args) {
  const Plan& plan = *g.plan;
  std::vector<Array> values(g.nodes.size());
  std::vector<Array> in;
  Arena arena(plan, g);
  for (const PlanStep& step : plan.steps) {
    if (step.group >= 0) {
      run_group(plan.groups[std::size_t(step.group)], g, values, args, arena);
    } else {
      values[std::size_t(step.node)] = arena.run(step.node, [&] {
        return replay_node(g.nodes[std::size_t(step.node)], g, args, values, in);
      });
    }
    for (std::int32_t r : step.release) values[std::size_t(r)] = Array();
  }
  return replay_outputs(g, args, values);
}

std::string graph_str(const Graph& g) {
  std::string s;
  if (!g.plan) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i) s += node_str(g, i) + "\n";
  } else {
    for (const PlanStep& step : g.plan->steps) {
      if (step.node >= 0) {
        s += node_str(g, std::size_t(step.node)) + "\n";
        continue;
      }
      const FusedGroup& fg = g.plan->groups[std::size_t(step.group)];
      s += "fused {\n";
      for (const FusedMember& m : fg.members) {
        s += "  " + node_str(g, std::size_t(m.node));
        for (const FusedOutput& o : fg.outputs) {
          if (o.node != m.node) continue;
          s += o.in_place >= 0
                   ? "  [in place of " + ref_str(fg.inputs[std::size_t(o.in_place)].ref) + "]"
                   : "  [materialized]";
        }
        s += "\n";
      }
      s += "}\n";
    }
  }
  s += "return";
  for (const ValueRef& r : g.outputs) s += " " + ref_str(r);
  return s + "\n";
}

}  // namespace loom::detail
