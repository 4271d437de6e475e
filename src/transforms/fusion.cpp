// jit's fusion pass: the replay plan of a captured graph (see loom/jit.hpp, detail::fuse).
//
// After a capture, groups of float32 elementwise nodes of one shape (those whose Primitive has a
// BlockKernel) become one fused step that runs block by block (1024 elements, kept in L1):
// each member's block kernel in the original order, intermediates in scratch blocks. A member's
// value is materialized (written to an array) only when a node outside the group or the result
// reads it; a group forms only where delaying its members to the group's last node is valid
// (every outside reader of a member comes after that node). Since every block kernel computes
// what its op's eager kernel computes, elementwise and in the same order, a fused replay equals
// the node-by-node one bit for bit.
//
// In-place reuse: a materialized output is written into the buffer of a full-shape input of the
// same dtype that dies at the group, was not sharing its buffer while tracing (reshape views,
// arguments and constants are never written) and is still uniquely held when the step runs.
// With JitOptions::arena the other intermediates get slots in one static arena planned here
// (src/transforms/arena.cpp), else they come from the allocator's per-thread cache. The fused
// replay itself is src/transforms/fused_replay.cpp.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "detail/allocator.hpp"
#include "loom/jit.hpp"
#include "transforms/graph.hpp"

namespace loom::detail {
namespace {

struct Aval {
  Shape shape;
  DType dtype;
};

Aval aval_of(const Graph& g, const ValueRef& r) {
  switch (r.kind) {
    case ValueRef::Kind::arg:
      return {g.arg_shapes[std::size_t(r.index)], g.arg_dtypes[std::size_t(r.index)]};
    case ValueRef::Kind::constant: {
      const Array& c = g.constants[std::size_t(r.index)];
      return {c.shape(), c.dtype()};
    }
    case ValueRef::Kind::node: {
      const GraphNode& n = g.nodes[std::size_t(r.index)];
      return {n.shape, n.dtype};
    }
    case ValueRef::Kind::none:
      break;
  }
  return {Shape{}, DType::float32};
}

// How an operand of shape `in` is read at each element of `out`: x[(i / repeat) % period].
// Possible when the operand's non-1 dims (right-aligned) are one contiguous run equal to out's.
bool broadcast_pattern(const Shape& in, const Shape& out, std::int64_t* repeat,
                       std::int64_t* period) {
  const int r = out.size(), shift = out.size() - in.size();
  if (shift < 0) return false;
  int lo = -1, hi = -1;
  for (int j = 0; j < r; ++j) {
    const std::int64_t d = j < shift ? 1 : in[j - shift];
    if (d == 1) continue;
    if (d != out[j]) return false;
    if (lo < 0) lo = j;
    hi = j + 1;
  }
  *repeat = 1;
  *period = 1;
  if (lo < 0) return true;  // a scalar
  for (int j = lo; j < hi; ++j) {
    const std::int64_t d = j < shift ? 1 : in[j - shift];
    if (d != out[j]) return false;  // a size-1 dim inside the run: not one stride pattern
    *period *= d;
  }
  for (int j = hi; j < r; ++j) *repeat *= out[j];
  return true;
}

bool fusable(const Graph& g, const GraphNode& n) {
  const BlockKernel& k = n.prim.block;
  const BlockImpl* closure = block_impl_of(n.impl);
  if ((!k.fusable() && closure == nullptr) || n.shape.numel() == 0) return false;
  std::size_t arity = 0;
  DType out = DType::float32;
  if (k.unary) arity = 1;
  if (k.binary) arity = 2;
  if (k.compare) arity = 2, out = DType::bool_;
  if (k.select) arity = 3;
  if (!k.fusable()) arity = std::size_t(closure->arity);  // all float32 operands
  if (n.inputs.size() != arity || n.dtype != out) return false;
  for (std::size_t i = 0; i < arity; ++i) {
    if (n.inputs[i].kind == ValueRef::Kind::none) return false;
    const Aval a = aval_of(g, n.inputs[i]);
    const DType want = (k.select && i == 0) ? DType::bool_ : DType::float32;
    std::int64_t repeat = 0, period = 0;
    if (a.dtype != want || !broadcast_pattern(a.shape, n.shape, &repeat, &period)) return false;
  }
  return true;
}

std::size_t bytes_of(const GraphNode& n) {
  return std::size_t(n.shape.numel()) * itemsize(n.dtype);
}

class Planner {
 public:
  Planner(const Graph& g, bool arena) : g_(g), n_(g.nodes.size()), arena_(arena) {}

  Plan run() {
    users_.assign(n_, {});
    is_output_.assign(n_, 0);
    for (std::size_t i = 0; i < n_; ++i)
      for (const ValueRef& r : g_.nodes[i].inputs)
        if (r.kind == ValueRef::Kind::node) {
          auto& u = users_[std::size_t(r.index)];
          if (u.empty() || u.back() != std::int32_t(i)) u.push_back(std::int32_t(i));
        }
    for (const ValueRef& r : g_.outputs)
      if (r.kind == ValueRef::Kind::node) is_output_[std::size_t(r.index)] = 1;
    form_groups();
    return build();
  }

 private:
  // Greedy, in node order: node n starts a group and absorbs the groups of its fusable
  // producers of the same shape whose members are read outside only after n.
  void form_groups() {
    group_of_.assign(n_, -1);
    for (std::size_t n = 0; n < n_; ++n) {
      if (!fusable(g_, g_.nodes[n])) continue;
      const auto id = std::int32_t(members_.size());
      members_.push_back({std::int32_t(n)});
      group_of_[n] = id;
      for (bool changed = true; changed;) {
        changed = false;
        const std::vector<std::int32_t> current = members_[std::size_t(id)];
        for (std::int32_t m : current) {
          for (const ValueRef& r : g_.nodes[std::size_t(m)].inputs) {
            if (r.kind != ValueRef::Kind::node) continue;
            const std::int32_t h = group_of_[std::size_t(r.index)];
            if (h < 0 || h == id || g_.nodes[std::size_t(r.index)].shape != g_.nodes[n].shape)
              continue;
            if (!can_merge(h, id, std::int32_t(n))) continue;
            for (std::int32_t q : members_[std::size_t(h)]) group_of_[std::size_t(q)] = id;
            auto& mine = members_[std::size_t(id)];
            mine.insert(mine.end(), members_[std::size_t(h)].begin(),
                        members_[std::size_t(h)].end());
            std::sort(mine.begin(), mine.end());
            members_[std::size_t(h)].clear();
            changed = true;
          }
        }
      }
    }
  }

  bool can_merge(std::int32_t h, std::int32_t id, std::int32_t root) const {
    for (std::int32_t q : members_[std::size_t(h)])
      for (std::int32_t u : users_[std::size_t(q)]) {
        const std::int32_t gu = group_of_[std::size_t(u)];
        if (gu != h && gu != id && u <= root) return false;
      }
    return true;
  }

  Plan build() {
    Plan plan;
    std::vector<std::int32_t> step_of(n_, -1);
    // Steps in node order; a group runs at its last member.
    for (std::size_t i = 0; i < n_; ++i) {
      const std::int32_t gid = group_of_[i];
      if (gid >= 0) {
        const auto& mem = members_[std::size_t(gid)];
        if (mem.size() == 1 && !singleton_in_place(std::int32_t(i))) {
          group_of_[i] = -1;  // a lone node with nothing to gain runs its eager kernel
        } else {
          if (mem.back() != std::int32_t(i)) continue;
          const auto s = std::int32_t(plan.steps.size());
          for (std::int32_t m : mem) step_of[std::size_t(m)] = s;
          plan.steps.push_back({.node = -1, .group = gid, .release = {}});
          continue;
        }
      }
      step_of[i] = std::int32_t(plan.steps.size());
      plan.steps.push_back({.node = std::int32_t(i), .group = -1, .release = {}});
    }
    // Last step reading each value; results are never released.
    last_.assign(n_, -2);
    for (std::size_t i = 0; i < n_; ++i)
      for (std::int32_t u : users_[i]) last_[i] = std::max(last_[i], step_of[std::size_t(u)]);
    for (std::size_t i = 0; i < n_; ++i) {
      if (is_output_[i]) last_[i] = -1;
      if (last_[i] == -2) last_[i] = step_of[i];
    }
    // Groups, materialized values and their release.
    std::vector<char> materialized(n_, 1);
    for (std::size_t s = 0; s < plan.steps.size(); ++s) {
      PlanStep& step = plan.steps[s];
      if (step.group < 0) continue;
      const std::int32_t gid = step.group;
      step.group = std::int32_t(plan.groups.size());
      plan.groups.push_back(make_group(members_[std::size_t(gid)], std::int32_t(s), materialized));
      plan.fused_nodes += members_[std::size_t(gid)].size();
    }
    for (std::size_t i = 0; i < n_; ++i)
      if (materialized[i] && last_[i] >= 0)
        plan.steps[std::size_t(last_[i])].release.push_back(std::int32_t(i));
    // Peak bytes alive at once; an in-place output takes over its input's bytes.
    std::size_t live = 0, peak = 0;
    std::vector<char> handed_over(n_, 0);
    for (const PlanStep& step : plan.steps) {
      if (step.node >= 0) {
        live += bytes_of(g_.nodes[std::size_t(step.node)]);
      } else {
        const FusedGroup& fg = plan.groups[std::size_t(step.group)];
        for (const FusedOutput& o : fg.outputs) {
          if (o.in_place >= 0) {
            handed_over[std::size_t(fg.inputs[std::size_t(o.in_place)].ref.index)] = 1;
            ++plan.in_place_nodes;
          } else {
            live += bytes_of(g_.nodes[std::size_t(o.node)]);
          }
        }
      }
      peak = std::max(peak, live);
      for (std::int32_t r : step.release)
        if (!handed_over[std::size_t(r)]) live -= bytes_of(g_.nodes[std::size_t(r)]);
    }
    plan.peak_live_bytes = peak;
    plan_arena(g_, plan, step_of, materialized, last_, is_output_, arena_);
    return plan;
  }

  // An input that dies at node i (and only there) could hold i's output.
  bool singleton_in_place(std::int32_t i) const {
    const GraphNode& node = g_.nodes[std::size_t(i)];
    for (const ValueRef& r : node.inputs) {
      if (r.kind != ValueRef::Kind::node || !dies_only_at(r.index, i)) continue;
      const GraphNode& in = g_.nodes[std::size_t(r.index)];
      if (in.shape == node.shape && in.dtype == node.dtype && !in.shares_buffer) return true;
    }
    return false;
  }
  bool dies_only_at(std::int32_t v, std::int32_t i) const {
    const auto& u = users_[std::size_t(v)];
    return !is_output_[std::size_t(v)] && !u.empty() && u.back() == i;  // (plan_in_place checks)
  }

  FusedGroup make_group(const std::vector<std::int32_t>& mem, std::int32_t step,
                        std::vector<char>& materialized) {
    FusedGroup fg;
    fg.shape = g_.nodes[std::size_t(mem.back())].shape;
    const std::int32_t gid = group_of_[std::size_t(mem.back())];
    std::vector<FusedLoc> loc(mem.size());
    auto member_index = [&](std::int32_t node) {
      return std::int32_t(std::lower_bound(mem.begin(), mem.end(), node) - mem.begin());
    };
    // Last member reading each member's value (for scratch reuse).
    std::vector<std::int32_t> last_read(mem.size(), -1);
    for (std::size_t k = 0; k < mem.size(); ++k)
      for (const ValueRef& r : g_.nodes[std::size_t(mem[k])].inputs)
        if (r.kind == ValueRef::Kind::node && group_of_[std::size_t(r.index)] == gid)
          last_read[std::size_t(member_index(r.index))] = std::int32_t(k);
    std::vector<std::int32_t> free_f, free_b;
    for (std::size_t k = 0; k < mem.size(); ++k) {
      const GraphNode& node = g_.nodes[std::size_t(mem[k])];
      FusedMember fm{.node = mem[k], .in = {}, .out = {}};
      std::vector<std::size_t> done;  // members whose last reader is this one
      for (const ValueRef& r : node.inputs) {
        if (r.kind == ValueRef::Kind::node && group_of_[std::size_t(r.index)] == gid) {
          const auto j = std::size_t(member_index(r.index));
          fm.in.push_back(loc[j]);
          if (last_read[j] == std::int32_t(k) && loc[j].kind != FusedLoc::Kind::output &&
              std::find(done.begin(), done.end(), j) == done.end())
            done.push_back(j);
          continue;
        }
        fm.in.push_back({FusedLoc::Kind::external, external(fg, r)});
      }
      // The output may take a slot this member reads: block kernels allow out == in.
      for (std::size_t j : done)
        (loc[j].kind == FusedLoc::Kind::float_slot ? free_f : free_b).push_back(loc[j].index);
      const std::int32_t v = mem[k];
      bool outside = is_output_[std::size_t(v)] || k + 1 == mem.size();
      for (std::int32_t u : users_[std::size_t(v)]) outside |= group_of_[std::size_t(u)] != gid;
      if (outside) {
        fm.out = {FusedLoc::Kind::output, std::int32_t(fg.outputs.size())};
        fg.outputs.push_back({.node = v, .in_place = -1});
      } else {
        materialized[std::size_t(v)] = 0;
        const bool is_bool = node.dtype == DType::bool_;
        auto& pool = is_bool ? free_b : free_f;
        std::int32_t& count = is_bool ? fg.bool_slots : fg.float_slots;
        std::int32_t slot = count;
        if (pool.empty()) {
          ++count;
        } else {
          slot = pool.back();
          pool.pop_back();
        }
        fm.out = {is_bool ? FusedLoc::Kind::bool_slot : FusedLoc::Kind::float_slot, slot};
      }
      loc[k] = fm.out;
      fg.members.push_back(std::move(fm));
    }
    plan_in_place(fg, step);
    return fg;
  }

  std::int32_t external(FusedGroup& fg, const ValueRef& r) const {
    for (std::size_t i = 0; i < fg.inputs.size(); ++i)
      if (fg.inputs[i].ref.kind == r.kind && fg.inputs[i].ref.index == r.index)
        return std::int32_t(i);
    FusedInput in;
    in.ref = r;
    const Aval a = aval_of(g_, r);
    in.dtype = a.dtype;
    broadcast_pattern(a.shape, fg.shape, &in.repeat, &in.period);
    in.full = in.repeat == 1 && in.period == fg.shape.numel();
    fg.inputs.push_back(in);
    return std::int32_t(fg.inputs.size() - 1);
  }

  // Each output takes the buffer of a distinct full-shape node input of its dtype that dies at
  // this group, unless a later member still reads that input.
  void plan_in_place(FusedGroup& fg, std::int32_t step) const {
    std::vector<char> taken(fg.inputs.size(), 0);
    for (FusedOutput& o : fg.outputs) {
      const GraphNode& out = g_.nodes[std::size_t(o.node)];
      std::size_t pos = 0;
      while (fg.members[pos].node != o.node) ++pos;
      for (std::size_t i = 0; i < fg.inputs.size() && o.in_place < 0; ++i) {
        const FusedInput& in = fg.inputs[i];
        if (taken[i] || !in.full || in.ref.kind != ValueRef::Kind::node) continue;
        const GraphNode& src = g_.nodes[std::size_t(in.ref.index)];
        if (src.dtype != out.dtype || src.shares_buffer) continue;
        if (last_[std::size_t(in.ref.index)] != step) continue;  // read later, or a result
        bool read_later = false;
        for (std::size_t k = pos + 1; k < fg.members.size(); ++k)
          for (const FusedLoc& l : fg.members[k].in)
            read_later |= l.kind == FusedLoc::Kind::external && l.index == std::int32_t(i);
        if (read_later) continue;
        taken[i] = 1;
        o.in_place = std::int32_t(i);
      }
    }
  }

  const Graph& g_;
  std::size_t n_;
  std::vector<std::vector<std::int32_t>> users_;  // nodes reading each node's value
  std::vector<char> is_output_;
  std::vector<std::int32_t> group_of_;
  std::vector<std::vector<std::int32_t>> members_;  // per group id, sorted (empty when merged)
  std::vector<std::int32_t> last_;
  bool arena_;
};

}  // namespace

std::shared_ptr<const Graph> fuse(std::shared_ptr<const Graph> graph, bool arena) {
  auto g = std::make_shared<Graph>(*graph);
  g->plan = std::make_shared<const Plan>(Planner(*g, arena).run());
  // The trace kept every traced value alive until it ended, and they now sit in the allocator's
  // cache in sizes the replays, which take one arena instead, will mostly not ask for again:
  // freed, so that the arena does not add its size to the trace's peak memory.
  if (arena && g->plan->arena_bytes > 0) pool_release();
  return g;
}

}  // namespace loom::detail
