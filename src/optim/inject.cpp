// optax.inject_hyperparams (optax/schedules/_inject.py, InjectStatefulHyperparamsState layout).
#include <string>
#include <utility>

#include "loom/optim/schedules.hpp"

namespace loom::optim {

namespace {

DType widest_float(const Tree& params, std::optional<DType> requested) {
  if (requested) {
    if (!is_floating(*requested)) {
      throw Error(std::string("optim.inject_hyperparams: hyperparam_dtype must be floating, got ") +
                  dtype_name(*requested));
    }
    return *requested;
  }
  for (const Array& leaf : tree_leaves(params))
    if (leaf.dtype() == DType::float64) return DType::float64;
  return DType::float32;
}

/// The value as stored in the state (rounded to `dtype`), and that rounded value as a double.
Array stored(double v, DType dtype) {
  return Array::scalar(v, DType::float64).astype(dtype);
}

const Tree& field(const Tree& state, const char* key) {
  if (!state.is_dict() || !state.contains(key)) {
    throw Error(std::string("optim.inject_hyperparams: expected a state with field \"") + key +
                "\", got:\n" + state.str());
  }
  return state.at(key);
}

}  // namespace

GradientTransformation inject_hyperparams(HyperparamFactory inner_factory,
                                          std::map<std::string, ScalarOrSchedule> hyperparams,
                                          std::optional<DType> hyperparam_dtype) {
  auto init = [=](const Tree& params) {
    const DType dtype = widest_float(params, hyperparam_dtype);
    Tree::Dict hp, hp_states;
    std::map<std::string, double> values;
    for (const auto& [name, v] : hyperparams) {
      if (v.is_schedule()) hp_states.emplace(name, Tree({{"count", zero_count()}}));
      Array a = stored(v(0), dtype);
      values[name] = a.item<double>();
      hp.emplace(name, std::move(a));
    }
    return Tree({{"count", zero_count()},
                 {"hyperparams", Tree(std::move(hp))},
                 {"hyperparams_states", Tree(std::move(hp_states))},
                 {"inner_state", inner_factory(values).init(params)}});
  };
  auto update = [=](Tree updates, Tree state, const std::optional<Tree>& params) {
    const DType dtype = widest_float(params ? *params : updates, hyperparam_dtype);
    const Tree& old_hp = field(state, "hyperparams");
    const Tree& old_states = field(state, "hyperparams_states");
    Tree::Dict hp, hp_states;
    std::map<std::string, double> values;
    for (const auto& [name, v] : hyperparams) {
      Array a;
      if (v.is_schedule()) {
        const Array count = field(field(old_states, name.c_str()), "count").leaf();
        a = stored(v(count.item<std::int32_t>()), dtype);
        hp_states.emplace(name, Tree({{"count", safe_increment(count)}}));
      } else {
        // Numeric hyper-parameters are read back from the state: whoever changed them there wins.
        a = field(old_hp, name.c_str()).leaf().astype(dtype);
      }
      values[name] = a.item<double>();
      hp.emplace(name, std::move(a));
    }
    const Array count = field(state, "count").leaf();
    Tree inner_state = std::move(state.at("inner_state"));
    auto [u, s] = inner_factory(values).update(std::move(updates), std::move(inner_state), params);
    Tree new_state = {{"count", safe_increment(count)},
                      {"hyperparams", Tree(std::move(hp))},
                      {"hyperparams_states", Tree(std::move(hp_states))},
                      {"inner_state", std::move(s)}};
    return std::make_pair(std::move(u), std::move(new_state));
  };
  return {std::move(init), std::move(update)};
}

}  // namespace loom::optim
