// flax.training.train_state.TrainState.
#include "loom/training/train_state.hpp"

#include <string>
#include <utility>

#include "loom/optim/base.hpp"

namespace loom::training {

namespace {

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "/" + key;
}

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

/// `state` checked against `target` (same keys, shapes, dtypes); a copy of `state`'s leaves.
Tree restore_like(const Tree& target, const Tree& state, const std::string& path) {
  if (target.is_leaf()) {
    if (!state.is_leaf()) {
      throw Error("TrainState.replace_from_state_dict: expected an array at '" + path +
                  "', got a dict with keys:\n" + state.str());
    }
    const Array& t = target.leaf();
    const Array& s = state.leaf();
    if (t.shape() != s.shape() || t.dtype() != s.dtype()) {
      throw Error("TrainState.replace_from_state_dict: '" + path + "' is " + describe(s) +
                  ", expected " + describe(t));
    }
    return state;
  }
  if (state.is_leaf()) {
    throw Error("TrainState.replace_from_state_dict: expected a dict at '" + path +
                "', got an array " + describe(state.leaf()));
  }
  for (const auto& [key, sub] : state.dict()) {
    if (!target.contains(key)) {
      throw Error("TrainState.replace_from_state_dict: unexpected key '" + join(path, key) +
                  "' in the state dict");
    }
  }
  Tree::Dict out;
  for (const auto& [key, sub] : target.dict()) {
    if (!state.contains(key)) {
      throw Error("TrainState.replace_from_state_dict: the state dict lacks '" + join(path, key) +
                  "'");
    }
    out.emplace(key, restore_like(sub, state.at(key), join(path, key)));
  }
  return Tree(std::move(out));
}

TrainState next(TrainState s, const Tree& grads, const Tree& extra_updates) {
  auto [updates, opt_state] = s.tx.update(grads, std::move(s.opt_state), s.params);
  s.params = optim::apply_updates(std::move(s.params), updates);
  s.opt_state = std::move(opt_state);
  s.step = optim::safe_increment(s.step);
  if (!extra_updates.is_dict()) {
    throw Error("TrainState.apply_gradients: extra_updates must be a dict of collections");
  }
  for (const auto& [key, value] : extra_updates.dict()) {
    if (!s.extra.contains(key)) {
      throw Error("TrainState.apply_gradients: unknown extra collection '" + key +
                  "' (the state has: " + (s.extra.empty() ? std::string("none") : s.extra.str()) +
                  ")");
    }
    s.extra.set(key, value);
  }
  return s;
}

}  // namespace

TrainState TrainState::create(ApplyFn apply_fn, Tree params, optim::GradientTransformation tx,
                              Tree extra) {
  if (!extra.is_dict()) throw Error("TrainState.create: extra must be a dict of collections");
  for (const char* reserved : {"params", "opt_state", "step"}) {
    if (extra.contains(reserved)) {
      throw Error(std::string("TrainState.create: an extra collection cannot be named '") +
                  reserved + "'");
    }
  }
  TrainState s;
  s.step = optim::zero_count();
  s.apply_fn = std::move(apply_fn);
  s.opt_state = tx.init(params);
  s.params = std::move(params);
  s.tx = std::move(tx);
  s.extra = std::move(extra);
  return s;
}

TrainState TrainState::apply_gradients(const Tree& grads, const Tree& extra_updates) const& {
  return next(*this, grads, extra_updates);
}

TrainState TrainState::apply_gradients(const Tree& grads, const Tree& extra_updates) && {
  return next(std::move(*this), grads, extra_updates);
}

Tree TrainState::variables() const {
  Tree v = extra;
  v.set("params", params);
  return v;
}

Array TrainState::apply(const Array& input) const {
  if (!apply_fn) throw Error("TrainState.apply: the state has no apply_fn");
  return apply_fn(variables(), input);
}

Tree TrainState::to_state_dict() const {
  Tree d = extra;
  d.set("step", step);
  d.set("params", params);
  d.set("opt_state", opt_state);
  return d;
}

TrainState TrainState::replace_from_state_dict(const Tree& state_dict) const {
  const Tree restored = restore_like(to_state_dict(), state_dict, "");
  TrainState s = *this;
  s.step = restored.at("step").leaf();
  s.params = restored.at("params");
  s.opt_state = restored.at("opt_state");
  for (const auto& [key, value] : extra.dict()) s.extra.set(key, restored.at(key));
  return s;
}

}  // namespace loom::training
