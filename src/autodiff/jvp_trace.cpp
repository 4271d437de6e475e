// Forward mode: tangents pushed through the primitives as they run (JAX's JVPTrace), see
// loom/autodiff/forward.hpp and detail/primitive.hpp.
//
// jvp(f, x, t) opens a level (a fresh id), gives each primal leaf its tangent at that level (in
// the leaf's node, detail/tape.hpp) and runs f. Every primitive bound while a level is visible
// and with an input that has a tangent at it gets its output tangent from its record's rule:
// linear (impl on the tangents), bilinear (impl once per perturbed operand), symmetric (the op's
// VJP on the tangent), an explicit rule, or the rule derived from the op's own VJP. Rules are loom
// ops, and the rule of level k runs with only the levels outside k visible: its ops carry the outer
// levels' tangents (second order, jvp of jvp) and are recorded by an outer grad (grad of jvp) and
// captured by jit/vmap, while level k never sees its own rule's arithmetic (no perturbation
// confusion).
#include <atomic>
#include <string>
#include <unordered_map>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/autodiff/forward.hpp"
#include "loom/numpy.hpp"

namespace loom::detail {

thread_local int g_forward_visible = 0;

namespace {

std::atomic<std::uint64_t> g_next_level{1};
// The jvp levels of this thread, outermost first; the first g_forward_visible are visible.
thread_local std::vector<std::uint64_t> g_levels;
// Which rule each primitive reached under jvp used (tests report it).
thread_local std::unordered_map<const Primitive*, ForwardRuleKind> g_rules_used;

// Only the levels below `k` are visible for its lifetime (the rule of level k runs under it).
struct ForwardMask {
  int saved = g_forward_visible;
  explicit ForwardMask(int k) { g_forward_visible = k; }
  ~ForwardMask() { g_forward_visible = saved; }
  ForwardMask(const ForwardMask&) = delete;
  ForwardMask& operator=(const ForwardMask&) = delete;
};

// A new innermost level for its lifetime; levels hidden when it opened stay hidden.
struct LevelScope {
  std::vector<std::uint64_t> saved_levels = g_levels;
  int saved_visible = g_forward_visible;
  std::uint64_t level = g_next_level.fetch_add(1);
  LevelScope() {
    g_levels.resize(std::size_t(g_forward_visible));
    g_levels.push_back(level);
    g_forward_visible = int(g_levels.size());
    ++g_transform_depth;
  }
  ~LevelScope() {
    --g_transform_depth;
    g_levels = std::move(saved_levels);
    g_forward_visible = saved_visible;
  }
  LevelScope(const LevelScope&) = delete;
  LevelScope& operator=(const LevelScope&) = delete;
};

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// J t for one primitive from its VJP, which is linear in the cotangent g: <vjp(g), t> is linear
// in g and its gradient with respect to g is J t. Exact; costs a recorded VJP and its backward.
Array derived_rule(const Vjp& vjp, const Array& out, const std::vector<const Array*>& inputs,
                   const std::vector<const Array*>& tangents) {
  Traced tr = trace(
      [&](const std::vector<Array>& g) -> Tree {
        std::vector<Array> cts = vjp(g[0], out);
        Array s;
        for (std::size_t i = 0; i < inputs.size() && i < cts.size(); ++i) {
          if (tangents[i] == nullptr || !cts[i].valid()) continue;
          Array term = numpy::sum(cts[i] * tangents[i]->astype(cts[i].dtype()));
          s = s.valid() ? s + term : term;
        }
        if (!s.valid()) s = numpy::sum(g[0] * 0.0);
        return Tree(s);
      },
      {numpy::zeros(out.shape(), out.dtype())});
  const Array& s = tr.output.leaf();
  return tr.pullback(Tree(numpy::ones_like(s))).at(0);
}

// Runs `rule(k, tangents)` for each visible level k at which some floating input has a tangent,
// and sets the result as out's tangent there. tangents[i] is null where input i has none.
// The rule gets the output as `rule(tangents, y)`. `reads_out`: the rule computes with y
// (explicit, symmetric, derived rules). While a grad trace records, the tangent's recorded
// history would then hold out's node, which holds the tangent: a reference cycle (a leak). So the
// rule sees y with a copy of out's node (same parents, VJP, saved output and outer tangents: the
// same value to every derivative), which nothing of out's own node refers to. out's node keeps
// the tangent itself, where a backward pass inside this jvp level (jvp of grad) reads it.
template <typename Rule>
void for_each_level(const char* name, Array& out, const std::vector<const Array*>& inputs,
                    const Node* before, bool reads_out, Rule&& rule) {
  if (!is_floating(out.dtype())) return;  // integer/bool outputs have no tangent
  const int visible = g_forward_visible;
  std::vector<const Array*> tangents(inputs.size());
  for (int k = 0; k < visible; ++k) {
    const std::uint64_t level = g_levels[std::size_t(k)];
    bool any = false;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      tangents[i] = is_floating(inputs[i]->dtype()) ? tangent_at(*inputs[i], level) : nullptr;
      any = any || tangents[i] != nullptr;
    }
    if (!any) continue;
    Array y = out;
    if (reads_out && recording() && out.node() && out.node().get() != before)
      y.set_node(std::make_shared<Node>(*out.node()));
    Array t;
    {
      ForwardMask mask(k);
      t = rule(tangents, y);
    }
    if (!t.valid()) continue;  // no contribution
    if (t.shape() != out.shape()) {
      throw Error(std::string("jvp: internal: the forward rule of ") + name + " gave a tangent " +
                  describe(t) + " for an output " + describe(out));
    }
    if (t.dtype() != out.dtype()) t = t.astype(out.dtype());
    set_tangent(out, level, std::move(t), before);
  }
}

// The tangents as the rule's operands: zeros for floating inputs without one, the primal for
// the others (indices, masks, keys). An elementwise op's non-floating inputs are operands
// (add(int, float)), not parameters: their tangent is zero, in the output's dtype.
std::vector<Array> dense_tangents(const Primitive& prim, const Array& out,
                                  const std::vector<const Array*>& inputs,
                                  const std::vector<const Array*>& tangents) {
  const bool elementwise = prim.batching == Batching::elementwise;
  std::vector<Array> t;
  t.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Array& x = *inputs[i];
    if (tangents[i] != nullptr)
      t.push_back(*tangents[i]);
    else if (is_floating(x.dtype()))
      t.push_back(numpy::zeros(x.shape(), x.dtype()));
    else if (elementwise)
      t.push_back(numpy::zeros(x.shape(), out.dtype()));
    else
      t.push_back(x);
  }
  return t;
}

std::vector<Array> primals_of(const std::vector<const Array*>& inputs) {
  std::vector<Array> p;
  p.reserve(inputs.size());
  for (const Array* a : inputs) p.push_back(*a);
  return p;
}

ForwardRuleKind kind_of(const Primitive& prim) {
  if (prim.jvp != nullptr) return ForwardRuleKind::explicit_rule;
  switch (prim.forward) {
    case Forward::linear:
      return ForwardRuleKind::linear;
    case Forward::bilinear:
      return ForwardRuleKind::bilinear;
    case Forward::symmetric:
      return ForwardRuleKind::symmetric;
    case Forward::derived:
      break;
  }
  return ForwardRuleKind::derived;
}

}  // namespace

const Array* tangent_at(const Array& a, std::uint64_t level) {
  const auto& n = a.node();
  if (!n) return nullptr;
  for (const auto& [l, t] : n->tangents)
    if (l == level) return &t;
  return nullptr;
}

void set_tangent(Array& out, std::uint64_t level, Array t, const Node* before) {
  const std::shared_ptr<Node>& n = out.node();
  if (!n || n.get() == before) {
    // No node, or one `out` shares with the array it came from: a node of its own, keeping the
    // shared one's history (identity VJP, as a trace leaf's) and tangents.
    auto node = std::make_shared<Node>();
    node->shape = out.shape();
    node->dtype = out.dtype();
    if (n) {
      node->tangents = n->tangents;
      if (n->stamp > 0) {
        node->stamp = n->stamp;
        node->parents.push_back(n);
        node->vjp = [](const Array& g, const Array&) { return std::vector<Array>{g}; };
      }
    }
    out.set_node(std::move(node));
  }
  auto& tangents = out.node()->tangents;
  for (auto& [l, old] : tangents) {
    if (l == level) {
      old = std::move(t);
      return;
    }
  }
  tangents.emplace_back(level, std::move(t));
}

void push_tangents(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                   const Impl& impl, const Vjp& vjp, const Node* before) {
  const ForwardRuleKind kind = kind_of(prim);
  const bool reads_out = kind != ForwardRuleKind::linear && kind != ForwardRuleKind::bilinear;
  for_each_level(prim.name, out, inputs, before, reads_out,
                 [&](const std::vector<const Array*>& tangents, const Array& y) {
                   g_rules_used[&prim] = kind;
                   switch (kind) {
                     case ForwardRuleKind::explicit_rule:
                       return prim.jvp(primals_of(inputs), y,
                                       dense_tangents(prim, out, inputs, tangents));
                     case ForwardRuleKind::linear:
                       return impl(dense_tangents(prim, out, inputs, tangents));
                     case ForwardRuleKind::bilinear: {
                       std::vector<Array> args = primals_of(inputs);
                       Array sum;
                       for (std::size_t i = 0; i < inputs.size(); ++i) {
                         if (tangents[i] == nullptr) continue;
                         args[i] = *tangents[i];
                         Array term = impl(args);
                         args[i] = *inputs[i];
                         sum = sum.valid() ? numpy::add(sum, term) : term;
                       }
                       return sum;
                     }
                     case ForwardRuleKind::symmetric: {
                       if (inputs.size() != 1) {
                         throw Error(std::string("jvp: internal: ") + prim.name +
                                     " declares a symmetric Jacobian but has " +
                                     std::to_string(inputs.size()) + " inputs");
                       }
                       std::vector<Array> ct = vjp(*tangents[0], y);
                       return ct.empty() ? Array() : ct[0];
                     }
                     default:
                       return derived_rule(vjp, y, inputs, tangents);
                   }
                 });
}

void push_rule_tangents(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                        const std::function<Array(const std::vector<Array>&)>& rule,
                        const Node* before) {
  if (!forwarding()) return;
  for_each_level(prim.name, out, inputs, before, /*reads_out=*/false,
                 [&](const std::vector<const Array*>& tangents, const Array&) {
                   g_rules_used[&prim] = ForwardRuleKind::explicit_rule;
                   return rule(dense_tangents(prim, out, inputs, tangents));
                 });
}

void push_vjp_tangents(const Primitive& prim, Array& out, const std::vector<const Array*>& inputs,
                       const Vjp& vjp, const Node* before) {
  if (!forwarding()) return;
  for_each_level(prim.name, out, inputs, before, /*reads_out=*/true,
                 [&](const std::vector<const Array*>& tangents, const Array& y) {
                   g_rules_used[&prim] = ForwardRuleKind::derived;
                   return derived_rule(vjp, y, inputs, tangents);
                 });
}

std::vector<std::pair<std::string, ForwardRuleKind>> forward_rules_used() {
  std::vector<std::pair<std::string, ForwardRuleKind>> out;
  for (const auto& [prim, kind] : g_rules_used) out.emplace_back(prim->name, kind);
  return out;
}

void clear_forward_rules_used() {
  g_rules_used.clear();
}

Forwarded jvp_leaves(const std::function<Tree(const std::vector<Array>&)>& f,
                     const std::vector<Array>& primals, const std::vector<Array>& tangents) {
  Tree output;
  std::uint64_t level = 0;
  {
    LevelScope scope;
    level = scope.level;
    std::vector<Array> leaves;
    leaves.reserve(primals.size());
    for (std::size_t i = 0; i < primals.size(); ++i) {
      Array a = primals[i];
      if (is_floating(a.dtype())) set_tangent(a, level, tangents[i], a.node().get());
      leaves.push_back(std::move(a));
    }
    output = f(leaves);
  }
  std::vector<Array> out_tangents;
  for (const Array& o : tree_leaves(output)) {
    const Array* t = tangent_at(o, level);
    out_tangents.push_back(t != nullptr ? *t : numpy::zeros(o.shape(), o.dtype()));
  }
  return {std::move(output), std::move(out_tangents)};
}

}  // namespace loom::detail
