// loom::Tree: a pytree of Arrays, the structure of Flax variables and of gradients.
//
// A Tree is either a leaf (one Array) or a dict: string keys (kept sorted, as jax.tree_util
// flattens dicts) mapping to subtrees.
//
//   loom::Tree params = {{"Dense_0", {{"kernel", w}, {"bias", b}}}};
//   loom::Tree doubled = loom::tree_map([](const loom::Array& a) { return a * 2.0; }, params);
//   std::vector<loom::Array> leaves = loom::tree_leaves(params);   // bias, kernel (sorted)
//   std::cout << params;   // prints every path with its shape and dtype
#pragma once

#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"

namespace loom {

class Tree {
 public:
  using Dict = std::map<std::string, Tree>;

  /// An empty dict.
  Tree() = default;
  Tree(Array leaf);  // NOLINT: a leaf converts implicitly, as in a Python pytree
  Tree(Dict dict);   // NOLINT
  Tree(std::initializer_list<std::pair<const std::string, Tree>> items);

  bool is_leaf() const { return is_leaf_; }
  bool is_dict() const { return !is_leaf_; }
  /// The leaf's Array; throws loom::Error on a dict.
  const Array& leaf() const;
  /// The dict's entries; throws loom::Error on a leaf.
  const Dict& dict() const;
  Dict& dict();

  bool contains(const std::string& key) const;
  /// The subtree under `key`; throws loom::Error naming the key and the keys present.
  const Tree& at(const std::string& key) const;
  Tree& at(const std::string& key);
  /// Inserts or replaces `key` (turns a leaf into a dict is an error).
  void set(const std::string& key, Tree value);
  /// Follows a path of keys ("Dense_0", "kernel"); throws naming the first missing key.
  const Tree& at_path(const std::vector<std::string>& path) const;
  /// Number of entries of a dict (0 for a leaf).
  std::size_t size() const { return is_leaf_ ? 0 : dict_.size(); }
  bool empty() const { return !is_leaf_ && dict_.empty(); }

  /// One line per leaf: "Dense_0/kernel: float32[3,4]" (paths joined with '/').
  std::string str() const;

  friend bool same_structure(const Tree& a, const Tree& b);

 private:
  Array leaf_;
  Dict dict_;
  bool is_leaf_ = false;
};

std::ostream& operator<<(std::ostream& os, const Tree& tree);

/// The structure of a tree without its leaves (jax.tree_util.PyTreeDef).
struct TreeDef {
  Tree skeleton;  // the tree with placeholder leaves
  std::size_t num_leaves = 0;
};

/// Leaves in flattening order (depth first, keys sorted).
///   for (const loom::Array& leaf : loom::tree_leaves(params)) n += leaf.size();
std::vector<Array> tree_leaves(const Tree& tree);
/// Leaves and (key path) of each leaf, e.g. {"params","Dense_0","kernel"}.
///   for (auto& [path, leaf] : loom::tree_leaves_with_path(variables)) ...
std::vector<std::pair<std::vector<std::string>, Array>> tree_leaves_with_path(const Tree& tree);
/// Leaves plus the structure to rebuild from (jax.tree_util.tree_flatten).
///   auto [leaves, def] = loom::tree_flatten(params);
std::pair<std::vector<Array>, TreeDef> tree_flatten(const Tree& tree);
/// Rebuilds a tree; throws loom::Error if the leaf count does not match.
///   loom::Tree same = loom::tree_unflatten(def, leaves);
Tree tree_unflatten(const TreeDef& def, std::vector<Array> leaves);
/// Applies f to every leaf.
///   auto halved = loom::tree_map([](const loom::Array& a) { return a * 0.5; }, params);
Tree tree_map(const std::function<Array(const Array&)>& f, const Tree& tree);
/// Applies f to matching leaves of two trees of the same structure (else loom::Error).
///   auto updated = loom::tree_map([](const loom::Array& p, const loom::Array& g) {
///     return p - 0.1 * g; }, params, grads);
Tree tree_map(const std::function<Array(const Array&, const Array&)>& f, const Tree& a,
              const Tree& b);
/// A leaf's key path from the root, e.g. {"params", "Dense_0", "kernel"} (jax.tree_util KeyPath).
using KeyPath = std::vector<std::string>;

namespace detail {
/// The leaf function of the n-ary maps: the leaf's path and one leaf per tree, in tree order.
using TreeMapFn = std::function<Array(const KeyPath& path, std::span<const Array> leaves)>;
/// Maps f over `trees` (at least one, all of the first tree's structure, else loom::Error naming
/// `fn_name` and the first path where they differ).
Tree tree_map_n(const TreeMapFn& f, std::span<const Tree* const> trees, const char* fn_name);

template <bool kWithPath, typename F, std::size_t... I>
Array call_with_leaves(F& f, const KeyPath& path, std::span<const Array> leaves,
                       std::index_sequence<I...>) {
  if constexpr (kWithPath)
    return f(path, leaves[I]...);
  else
    return f(leaves[I]...);
}
template <typename T>
using leaf_arg_t = const Array&;
}  // namespace detail

/// Applies f to matching leaves of three or more trees of the same structure (jax.tree.map with
/// `*rest`); a structure mismatch is a loom::Error naming the path.
///   auto next = loom::tree_map([](const loom::Array& p, const loom::Array& m,
///                                 const loom::Array& v) { return p - m / (v + 1e-8); },
///                              params, mu, nu);
template <typename F, typename... Rest>
requires(sizeof...(Rest) >= 2 && (std::is_same_v<Rest, Tree> && ...) &&
         std::is_invocable_r_v<Array, F&, const Array&, detail::leaf_arg_t<Rest>...>) Tree
    tree_map(F&& f, const Tree& first, const Rest&... rest) {
  const Tree* trees[] = {&first, &rest...};
  return detail::tree_map_n(
      [&f](const KeyPath& path, std::span<const Array> leaves) {
        return detail::call_with_leaves<false>(f, path, leaves,
                                               std::make_index_sequence<1 + sizeof...(Rest)>{});
      },
      trees, "tree_map");
}

/// Applies f(path, leaf, leaves_of_rest...) to every leaf of one or more trees of the same
/// structure (jax.tree_util.tree_map_with_path); `path` is the leaf's KeyPath.
///   auto decayed = loom::tree_map_with_path(
///       [](const loom::KeyPath& path, const loom::Array& p) {
///         return path.back() == "kernel" ? p * 0.99 : p; }, params);
template <typename F, typename... Rest>
requires((std::is_same_v<Rest, Tree> && ...) &&
         std::is_invocable_r_v<Array, F&, const KeyPath&, const Array&,
                               detail::leaf_arg_t<Rest>...>) Tree
    tree_map_with_path(F&& f, const Tree& first, const Rest&... rest) {
  const Tree* trees[] = {&first, &rest...};
  return detail::tree_map_n(
      [&f](const KeyPath& path, std::span<const Array> leaves) {
        return detail::call_with_leaves<true>(f, path, leaves,
                                              std::make_index_sequence<1 + sizeof...(Rest)>{});
      },
      trees, "tree_map_with_path");
}

/// True when both trees have the same keys at every level and leaves at the same places.
///   assert(loom::same_structure(params, grads));
bool same_structure(const Tree& a, const Tree& b);

}  // namespace loom
