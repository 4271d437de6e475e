// Private: pieces of Flax's lift.pack shared by the lifted transforms (nn::scan/nn::vmap in
// transforms.cpp, nn::remat/nn::jit in transforms_call.cpp): nesting a collection under a
// module's path, and copying a scope subtree's rng counters out and back in (lift.pack does the
// same with the nested rng_counters dict).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "loom/core/scope.hpp"
#include "loom/tree.hpp"

namespace loom::nn::detail {

/// {p0: {p1: ... value}}: `value` nested under `path`.
inline Tree nest(const std::vector<std::string>& path, Tree value) {
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    Tree parent;
    parent.dict()[*it] = std::move(value);
    value = std::move(parent);
  }
  return value;
}

/// The counters of `s` and its descendants, as a tree `T` with fields `counters` (the scope's
/// own map) and `children` (name -> T).
template <typename T>
T save_rng_counters(core::Scope& s) {
  T t;
  t.counters = s.rng_counters();
  for (const std::string& name : s.child_names()) {
    if (core::Scope* c = s.find_child(name)) t.children[name] = save_rng_counters<T>(*c);
  }
  return t;
}

/// Writes the counts of `t` into s's subtree. Children are created where missing (a later push
/// of the name reaches them with their counts) and s is rewound, so no name stays reserved.
template <typename T>
void load_rng_counters(core::Scope& s, const T& t) {
  s.rng_counters() = t.counters;
  for (const auto& [name, sub] : t.children) {
    core::Scope* c = s.find_child(name);
    if (c == nullptr) c = &s.push(name, /*reuse=*/true);
    load_rng_counters(*c, sub);
  }
  s.rewind();
}

}  // namespace loom::nn::detail
