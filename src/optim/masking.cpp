// optax.masked and optax.add_decayed_weights (optax/transforms/_masking.py, _adding.py).
#include "loom/optim/masking.hpp"

#include <string>
#include <utility>

#include "optim/kernels.hpp"

namespace loom::optim {

using detail::fused;
using detail::need_params;
using detail::take_field;
using detail::take_leaves;

namespace {

/// One bool per leaf of `tree` (flattening order); a bool leaf of the mask covers a subtree.
void expand_mask(const Tree& mask, const Tree& tree, const std::string& path,
                 std::vector<bool>& out) {
  if (mask.is_leaf()) {
    const Array& m = mask.leaf();
    if (m.dtype() != DType::bool_ || m.size() != 1) {
      throw Error("optim.masked: mask leaves must be bool scalars, got " +
                  std::string(dtype_name(m.dtype())) + m.shape().str() + " at '" + path + "'");
    }
    const bool on = m.item<bool>();
    out.insert(out.end(), tree_leaves(tree).size(), on);
    return;
  }
  if (tree.is_leaf() || mask.size() != tree.size()) {
    throw Error("optim.masked: the mask does not match the params' structure at '" + path +
                "'; mask:\n" + mask.str() + "\nparams:\n" + tree.str());
  }
  for (const auto& [key, sub] : tree.dict()) {
    if (!mask.contains(key)) {
      throw Error("optim.masked: the mask lacks key '" + key + "' at '" + path + "'");
    }
    expand_mask(mask.at(key), sub, path.empty() ? key : path + "/" + key, out);
  }
}

/// The mask as a tree (a function mask applied to `tree`), checked against `tree`, and one bool
/// per leaf of `tree`.
std::pair<Tree, std::vector<bool>> resolve_mask(const Mask& mask, const Tree& tree) {
  Tree m = std::holds_alternative<Tree>(mask)
               ? std::get<Tree>(mask)
               : std::get<std::function<Tree(const Tree&)>>(mask)(tree);
  std::vector<bool> out;
  expand_mask(m, tree, "", out);
  return {std::move(m), std::move(out)};
}

/// optax's mask_pytree: `skeleton` where a false mask leaf replaces its whole subtree by one
/// MaskedNode (which Flax serializes as an empty dict {}), kept leaves taken from `leaves`.
/// The mask may be a prefix of the tree (a bool covering a subtree).
Tree masked_tree(const Tree& skeleton, const Tree& mask, std::vector<Array>& leaves,
                 std::size_t& k) {
  if (mask.is_leaf()) {
    const std::size_t n = tree_leaves(skeleton).size();
    if (!mask.leaf().item<bool>()) {
      k += n;
      return Tree();
    }
    std::vector<Array> kept(std::make_move_iterator(leaves.begin() + std::ptrdiff_t(k)),
                            std::make_move_iterator(leaves.begin() + std::ptrdiff_t(k + n)));
    k += n;
    return skeleton.is_leaf() ? Tree(std::move(kept.at(0)))
                              : tree_unflatten(tree_flatten(skeleton).second, std::move(kept));
  }
  Tree::Dict d;
  for (const auto& [key, sub] : skeleton.dict()) {
    d.emplace(key, masked_tree(sub, mask.at(key), leaves, k));
  }
  return Tree(std::move(d));
}

Tree masked_copy(const Tree& tree, const Tree& mask) {
  auto [leaves, def] = tree_flatten(tree);
  std::size_t k = 0;
  return masked_tree(def.skeleton, mask, leaves, k);
}

}  // namespace

GradientTransformation masked(GradientTransformation inner, Mask mask) {
  auto init = [inner, mask](const Tree& params) {
    return Tree(
        {{"inner_state", inner.init(masked_copy(params, resolve_mask(mask, params).first))}});
  };
  auto update = [inner, mask](Tree updates, Tree state, const std::optional<Tree>& params) {
    Tree inner_state = take_field(state, "inner_state", "masked");
    const auto [mask_tree, on] = resolve_mask(mask, updates);
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    std::size_t k = 0;  // the masked-in leaves move into the inner update (in place if unique)
    Tree sub = masked_tree(def.skeleton, mask_tree, g, k);
    std::optional<Tree> sub_params;
    if (params) {
      detail::check_structure("masked", def.skeleton, "updates", *params, "params");
      sub_params = masked_copy(*params, mask_tree);
    }
    auto [new_sub, new_inner] = inner.update(std::move(sub), std::move(inner_state), sub_params);
    std::vector<Array> changed = take_leaves(new_sub);
    std::size_t j = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (!on[i]) continue;
      if (j >= changed.size()) throw Error("optim.masked: the inner transformation dropped leaves");
      g[i] = std::move(changed[j++]);
    }
    Tree new_state = {{"inner_state", std::move(new_inner)}};
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {std::move(init), std::move(update)};
}

GradientTransformation add_decayed_weights(ScalarOrSchedule weight_decay,
                                           std::optional<Mask> mask) {
  auto init = [weight_decay](const Tree&) {
    return weight_decay.is_schedule() ? Tree({{"count", zero_count()}}) : Tree();
  };
  auto update = [weight_decay](Tree updates, Tree state, const std::optional<Tree>& params) {
    const Tree& p_tree = need_params(params, updates, "add_decayed_weights");
    const std::vector<Array> p = tree_leaves(p_tree);
    TreeDef def;
    if (weight_decay.is_schedule()) {
      // The rate at the count, a float64 scalar from loom ops (traced under jit).
      const Array count = take_field(state, "count", "add_decayed_weights").leaf();
      const detail::Bcast s = detail::bcast(weight_decay(count));
      std::vector<Array> g = take_leaves(updates, &def);
      for (std::size_t i = 0; i < g.size(); ++i) {
        g[i] = fused(
            "add_decayed_weights", [](auto x, auto w, auto r) { return x + r * w; },
            std::move(g[i]), p[i], s);
      }
      Tree new_state = {{"count", safe_increment(count)}};
      return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
    }
    const double s = weight_decay.value();
    if (s == 0.0) return std::make_pair(std::move(updates), std::move(state));
    Tree new_state = std::move(state);
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = fused(
          "add_decayed_weights", [s](auto x, auto w) { return x + decltype(x)(s) * w; },
          std::move(g[i]), p[i]);
    }
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  GradientTransformation tx{std::move(init), std::move(update)};
  if (mask) return masked(std::move(tx), std::move(*mask));
  return tx;
}

}  // namespace loom::optim
