// Private: copying a scope subtree's rng counters out and back in, shared by the lifted
// transforms (nn::scan/nn::vmap in transforms.cpp, nn::remat/nn::jit in transforms_call.cpp).
// Flax's lift.pack does the same with the nested rng_counters dict.
#pragma once

#include <string>

#include "loom/core/scope.hpp"

namespace loom::nn::detail {

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
