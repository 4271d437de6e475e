// jit's static arena plan (JitOptions::arena), the last part of the fusion pass
// (src/transforms/fusion.cpp); the per-call arena that replays use is in fused_replay.cpp.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "detail/allocator.hpp"
#include "transforms/graph.hpp"

namespace loom::detail {
namespace {

std::size_t bytes_of(const GraphNode& n) {
  return std::size_t(n.shape.numel()) * itemsize(n.dtype);
}

}  // namespace

// The static arena: every materialized value that is not a result and never shared its
// buffer while tracing (a reshape view, an op returning its input: a view could outlive the
// slot) gets a slot, live from the step that writes it to the last step reading it. An
// in-place output shares its input's slot (one storage, the union of their ranges); a storage
// holding any value that may not be planned is left out whole. Slots are placed greedily,
// largest first, at the lowest 64-byte-aligned offset free over their range.
void plan_arena(const Graph& g, Plan& plan, const std::vector<std::int32_t>& step_of,
                const std::vector<char>& materialized, const std::vector<std::int32_t>& last,
                const std::vector<char>& is_output, bool enabled) {
  const std::size_t n = g.nodes.size();
  plan.arena_offset.assign(n, -1);
  plan.arena_root.assign(n, -1);
  plan.arena_state = std::make_unique<std::atomic<ArenaState>[]>(n);
  std::vector<std::int32_t> root(n, -1);
  for (std::size_t i = 0; i < n; ++i)
    if (materialized[i]) root[i] = std::int32_t(i);
  for (const FusedGroup& fg : plan.groups)
    for (const FusedOutput& o : fg.outputs)
      if (o.in_place >= 0)
        root[std::size_t(o.node)] = root[std::size_t(fg.inputs[std::size_t(o.in_place)].ref.index)];
  struct Storage {
    std::int32_t start = 0, end = -1;
    std::size_t cap = 0;
    bool ok = true;
    std::int64_t offset = -1;
  };
  std::vector<Storage> st(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!materialized[i]) continue;
    const GraphNode& node = g.nodes[i];
    if (!is_output[i]) plan.intermediate_bytes += bytes_of(node);
    Storage& s = st[std::size_t(root[i])];
    if (std::int32_t(i) == root[i]) {
      s.start = step_of[i];
      s.cap = buffer_capacity(bytes_of(node));
    }
    s.end = std::max({s.end, last[i], step_of[i]});
    s.ok &= enabled && !is_output[i] && !node.shares_buffer && bytes_of(node) > 0;
  }
  std::vector<std::int32_t> order;
  for (std::size_t i = 0; i < n; ++i)
    if (root[i] == std::int32_t(i) && st[i].ok) order.push_back(std::int32_t(i));
  std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    return st[std::size_t(a)].cap > st[std::size_t(b)].cap;
  });
  std::vector<std::int32_t> placed;
  std::vector<std::pair<std::int64_t, std::int64_t>> busy;  // [offset, end) over the range
  for (std::int32_t v : order) {
    Storage& s = st[std::size_t(v)];
    busy.clear();
    for (std::int32_t p : placed) {
      const Storage& q = st[std::size_t(p)];
      if (q.start <= s.end && s.start <= q.end)
        busy.push_back({q.offset, q.offset + std::int64_t(q.cap)});
    }
    std::sort(busy.begin(), busy.end());
    std::int64_t offset = 0;
    for (const auto& [b, e] : busy) {
      if (b >= offset + std::int64_t(s.cap)) break;  // the gap before b fits
      offset = std::max(offset, e);
    }
    s.offset = offset;
    placed.push_back(v);
    plan.arena_offset[std::size_t(v)] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, std::size_t(offset) + s.cap);
    plan.no_reuse_bytes += s.cap;
  }
  std::vector<std::size_t> live(plan.steps.size() + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (root[i] < 0 || !st[std::size_t(root[i])].ok) continue;
    plan.arena_root[i] = root[i];
    plan.planned_bytes += bytes_of(g.nodes[i]);
  }
  for (std::int32_t v : placed) {
    const Storage& s = st[std::size_t(v)];
    for (std::int32_t k = s.start; k <= s.end; ++k) live[std::size_t(k)] += s.cap;
  }
  for (std::size_t b : live) plan.planned_peak_bytes = std::max(plan.planned_peak_bytes, b);
}

}  // namespace loom::detail
