// loom::training::TrainState, after flax/training/train_state.py: the step, the params, the
// optimizer (an optax-style GradientTransformation) and its state, and the model's apply
// function, in one value; apply_gradients returns the next state.
//
//   auto state = training::TrainState::create(
//       [&](const loom::Tree& v, const loom::Array& x) { return model.apply(v, x); },
//       variables.at("params"), optim::sgd(0.1, 0.9));
//   auto [loss, grads] = loom::value_and_grad(loss_fn)(state.params, batch);
//   state = std::move(state).apply_gradients(grads);   // in place where nothing else holds it
//   loom::Tree ckpt = state.to_state_dict();           // {"opt_state", "params", "step"}
//
// Extra collections (Flax's examples subclass TrainState with `batch_stats`) live in `extra`:
// each of its keys is one more top-level entry of the state dict, and apply_gradients takes
// their new values as Flax's apply_gradients(grads=..., batch_stats=...) does.
#pragma once

#include <functional>

#include "loom/array.hpp"
#include "loom/optim/base.hpp"
#include "loom/tree.hpp"

namespace loom::training {

struct TrainState {
  /// The model's apply: (variables {"params": ..., extra collections...}, input) -> output.
  using ApplyFn = std::function<Array(const Tree& variables, const Array& input)>;

  Array step;        // int32 scalar; 0 after create
  ApplyFn apply_fn;  // not part of the state dict (Flax: pytree_node=False)
  Tree params;
  optim::GradientTransformation tx;  // not part of the state dict
  Tree opt_state;
  Tree extra;  // extra collections, e.g. {"batch_stats": ...}; {} when none

  /// flax TrainState.create: step 0, opt_state = tx.init(params).
  ///   auto state = TrainState::create(apply, params, optim::adam(1e-3), {{"batch_stats", bs}});
  static TrainState create(ApplyFn apply_fn, Tree params, optim::GradientTransformation tx,
                           Tree extra = Tree());

  /// flax TrainState.apply_gradients: tx.update, apply_updates, step + 1; `extra_updates`
  /// replaces the extra collections it names (each must already exist). The rvalue overload
  /// (std::move(state).apply_gradients(g)) lets the optimizer update buffers in place.
  TrainState apply_gradients(const Tree& grads, const Tree& extra_updates = Tree()) const&;
  TrainState apply_gradients(const Tree& grads, const Tree& extra_updates = Tree()) &&;

  /// The variables to apply the model with: {"params": params} plus the extra collections.
  Tree variables() const;
  /// Runs apply_fn(variables(), input).
  Array apply(const Array& input) const;

  /// Flax's serialization.to_state_dict(state): {"opt_state", "params", "step"} plus the
  /// extra collections; opt_state in optax's layout ({"0": ..., "1": ...} for a chain).
  Tree to_state_dict() const;
  /// Flax's serialization.from_state_dict(state, state_dict): this state with the values of
  /// `state_dict`, which must have this state's structure, shapes and dtypes (loom::Error naming
  /// the path, e.g. "params/Dense_0/kernel", otherwise). apply_fn and tx are kept.
  TrainState replace_from_state_dict(const Tree& state_dict) const;
};

}  // namespace loom::training
