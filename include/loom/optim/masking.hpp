// Masks and weight decay, after optax/transforms/_masking.py and _adding.py: apply a
// transformation to some leaves only (skip biases and norms for weight decay, say).
//
//   loom::Tree mask = loom::tree_map([](const loom::Array& p) {
//     return loom::Array::scalar(p.ndim() > 1); }, params);      // kernels only
//   auto tx = optim::add_decayed_weights(1e-4, mask);             // {"inner_state": {}}
#pragma once

#include <functional>
#include <optional>
#include <variant>

#include "loom/optim/base.hpp"

namespace loom::optim {

/// A mask as optax takes it: a Tree of bool leaves with the params' structure (or a prefix of
/// it: a bool leaf covers a whole subtree), or a function of the params returning one.
using Mask = std::variant<Tree, std::function<Tree(const Tree& params)>>;

/// optax.masked: applies `inner` only to the leaves whose mask is true; the others pass through.
/// State {"inner_state": inner's state over the masked leaves}.
///   auto decay_kernels = optim::masked(optim::add_decayed_weights(1e-4), kernel_mask);
GradientTransformation masked(GradientTransformation inner, Mask mask);

/// optax.add_decayed_weights: updates + weight_decay * params. Needs params. State {} (a
/// schedule: {"count"}); with a mask, wrapped in optim::masked.
GradientTransformation add_decayed_weights(ScalarOrSchedule weight_decay = 0.0,
                                           std::optional<Mask> mask = std::nullopt);

}  // namespace loom::optim
