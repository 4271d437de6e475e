// loom::Tree and the jax.tree_util-style functions over it.
#include "loom/tree.hpp"

#include <ostream>
#include <sstream>

namespace loom {

Tree::Tree(Array leaf) : leaf_(std::move(leaf)), is_leaf_(true) {}
Tree::Tree(Dict dict) : dict_(std::move(dict)) {}
Tree::Tree(std::initializer_list<std::pair<const std::string, Tree>> items) : dict_(items) {}

const Array& Tree::leaf() const {
  if (!is_leaf_)
    throw Error("Tree.leaf: this node is a dict with " + std::to_string(dict_.size()) +
                " keys, not a leaf");
  return leaf_;
}

const Tree::Dict& Tree::dict() const {
  if (is_leaf_)
    throw Error("Tree.dict: this node is a leaf of shape " + leaf_.shape().str() + ", not a dict");
  return dict_;
}

Tree::Dict& Tree::dict() {
  if (is_leaf_)
    throw Error("Tree.dict: this node is a leaf of shape " + leaf_.shape().str() + ", not a dict");
  return dict_;
}

bool Tree::contains(const std::string& key) const {
  return !is_leaf_ && dict_.count(key) > 0;
}

namespace {
std::string key_list(const Tree::Dict& d) {
  std::string s = "[";
  for (const auto& [k, v] : d) s += (s.size() > 1 ? ", \"" : "\"") + k + "\"";
  return s + "]";
}
}  // namespace

const Tree& Tree::at(const std::string& key) const {
  if (is_leaf_) throw Error("Tree.at(\"" + key + "\"): this node is a leaf, not a dict");
  auto it = dict_.find(key);
  if (it == dict_.end())
    throw Error("Tree.at: missing key \"" + key + "\"; keys present: " + key_list(dict_));
  return it->second;
}

Tree& Tree::at(const std::string& key) {
  return const_cast<Tree&>(static_cast<const Tree&>(*this).at(key));
}

void Tree::set(const std::string& key, Tree value) {
  if (is_leaf_) throw Error("Tree.set(\"" + key + "\"): this node is a leaf, not a dict");
  dict_[key] = std::move(value);
}

const Tree& Tree::at_path(const std::vector<std::string>& path) const {
  const Tree* t = this;
  std::string walked;
  for (const auto& key : path) {
    if (!t->contains(key)) {
      throw Error("Tree.at_path: missing key \"" + key + "\" under \"" + walked + "\"" +
                  (t->is_leaf_ ? " (a leaf)" : "; keys present: " + key_list(t->dict_)));
    }
    t = &t->dict_.at(key);
    walked += (walked.empty() ? "" : "/") + key;
  }
  return *t;
}

std::string Tree::str() const {
  std::ostringstream os;
  for (const auto& [path, leaf] : tree_leaves_with_path(*this)) {
    std::string p;
    for (const auto& k : path) p += (p.empty() ? "" : "/") + k;
    os << (p.empty() ? "<root>" : p) << ": " << dtype_name(leaf.dtype()) << "[";
    for (int i = 0; i < leaf.ndim(); ++i) os << (i ? "," : "") << leaf.shape()[i];
    os << "]\n";
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tree& tree) {
  return os << tree.str();
}

namespace {
void collect(const Tree& t, std::vector<std::string>& path,
             std::vector<std::pair<std::vector<std::string>, Array>>& out) {
  if (t.is_leaf()) {
    out.emplace_back(path, t.leaf());
    return;
  }
  for (const auto& [k, v] : t.dict()) {
    path.push_back(k);
    collect(v, path, out);
    path.pop_back();
  }
}

void collect_leaves(const Tree& t, std::vector<Array>& out) {
  if (t.is_leaf()) {
    out.push_back(t.leaf());
    return;
  }
  for (const auto& [k, v] : t.dict()) collect_leaves(v, out);
}

Tree fill(const Tree& skeleton, std::vector<Array>& leaves, std::size_t& next) {
  if (skeleton.is_leaf()) return Tree(std::move(leaves[next++]));
  Tree::Dict d;
  for (const auto& [k, v] : skeleton.dict()) d.emplace(k, fill(v, leaves, next));
  return Tree(std::move(d));
}

Tree map2(const std::function<Array(const Array&, const Array&)>& f, const Tree& a, const Tree& b,
          const std::string& path) {
  if (a.is_leaf() != b.is_leaf()) {
    throw Error("tree_map: trees differ in structure at \"" + path + "\" (" +
                (a.is_leaf() ? "leaf" : "dict") + " vs " + (b.is_leaf() ? "leaf" : "dict") + ")");
  }
  if (a.is_leaf()) return Tree(f(a.leaf(), b.leaf()));
  Tree::Dict d;
  for (const auto& [k, v] : a.dict()) {
    if (!b.contains(k))
      throw Error("tree_map: second tree is missing key \"" + k + "\" at \"" + path + "\"");
    d.emplace(k, map2(f, v, b.dict().at(k), path.empty() ? k : path + "/" + k));
  }
  if (b.dict().size() != a.dict().size()) {
    throw Error("tree_map: second tree has extra keys at \"" + path + "\": " + key_list(b.dict()));
  }
  return Tree(std::move(d));
}
std::string join_path(const KeyPath& path) {
  std::string s;
  for (const auto& k : path) s += (s.empty() ? "" : "/") + k;
  return s;
}

struct MapN {
  const detail::TreeMapFn& f;
  const char* fn_name;
  KeyPath path;
  std::vector<Array> leaves;  // scratch: the current leaf of every tree

  [[noreturn]] void mismatch(std::size_t i, const std::string& what) const {
    throw Error(std::string(fn_name) + ": tree " + std::to_string(i) +
                " differs in structure from tree 0 at \"" + join_path(path) + "\": " + what);
  }

  Tree run(std::vector<const Tree*> at) {
    const Tree& t0 = *at[0];
    for (std::size_t i = 1; i < at.size(); ++i) {
      if (at[i]->is_leaf() != t0.is_leaf()) {
        mismatch(i, std::string(at[i]->is_leaf() ? "a leaf" : "a dict") + " where tree 0 has " +
                        (t0.is_leaf() ? "a leaf" : "a dict"));
      }
    }
    if (t0.is_leaf()) {
      leaves.clear();
      for (const Tree* t : at) leaves.push_back(t->leaf());
      return Tree(f(path, std::span<const Array>(leaves)));
    }
    for (std::size_t i = 1; i < at.size(); ++i) {
      const Tree::Dict& d = at[i]->dict();
      for (const auto& [k, v] : t0.dict()) {
        if (!d.count(k)) mismatch(i, "missing key \"" + k + "\"; keys present: " + key_list(d));
      }
      if (d.size() != t0.dict().size())
        mismatch(
            i, "extra keys; keys present: " + key_list(d) + ", tree 0 has " + key_list(t0.dict()));
    }
    Tree::Dict out;
    std::vector<const Tree*> next(at.size());
    for (const auto& [k, v] : t0.dict()) {
      next[0] = &v;
      for (std::size_t i = 1; i < at.size(); ++i) next[i] = &at[i]->dict().at(k);
      path.push_back(k);
      out.emplace(k, run(next));
      path.pop_back();
    }
    return Tree(std::move(out));
  }
};
}  // namespace

namespace detail {
Tree tree_map_n(const TreeMapFn& f, std::span<const Tree* const> trees, const char* fn_name) {
  if (trees.empty()) throw Error(std::string(fn_name) + ": needs at least one tree");
  MapN m{f, fn_name, {}, {}};
  return m.run(std::vector<const Tree*>(trees.begin(), trees.end()));
}
}  // namespace detail

std::vector<Array> tree_leaves(const Tree& tree) {
  std::vector<Array> out;
  collect_leaves(tree, out);
  return out;
}

std::vector<std::pair<std::vector<std::string>, Array>> tree_leaves_with_path(const Tree& tree) {
  std::vector<std::pair<std::vector<std::string>, Array>> out;
  std::vector<std::string> path;
  collect(tree, path, out);
  return out;
}

std::pair<std::vector<Array>, TreeDef> tree_flatten(const Tree& tree) {
  std::vector<Array> leaves = tree_leaves(tree);
  TreeDef def{tree_map([](const Array&) { return Array(); }, tree), leaves.size()};
  return {std::move(leaves), std::move(def)};
}

Tree tree_unflatten(const TreeDef& def, std::vector<Array> leaves) {
  if (leaves.size() != def.num_leaves) {
    throw Error("tree_unflatten: the tree has " + std::to_string(def.num_leaves) + " leaves, got " +
                std::to_string(leaves.size()) + " arrays");
  }
  std::size_t next = 0;
  return fill(def.skeleton, leaves, next);
}

Tree tree_map(const std::function<Array(const Array&)>& f, const Tree& tree) {
  if (tree.is_leaf()) return Tree(f(tree.leaf()));
  Tree::Dict d;
  for (const auto& [k, v] : tree.dict()) d.emplace(k, tree_map(f, v));
  return Tree(std::move(d));
}

Tree tree_map(const std::function<Array(const Array&, const Array&)>& f, const Tree& a,
              const Tree& b) {
  return map2(f, a, b, "");
}

bool same_structure(const Tree& a, const Tree& b) {
  if (a.is_leaf() != b.is_leaf()) return false;
  if (a.is_leaf()) return true;
  if (a.dict_.size() != b.dict_.size()) return false;
  for (const auto& [k, v] : a.dict_) {
    auto it = b.dict_.find(k);
    if (it == b.dict_.end() || !same_structure(v, it->second)) return false;
  }
  return true;
}

}  // namespace loom
