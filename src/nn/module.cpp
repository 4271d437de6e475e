// The non-template half of loom::nn::Module's helpers: sow, perturb and merge_param's errors.
#include "loom/nn/module.hpp"

#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"

namespace loom::nn::detail {

bool sow_impl(core::Scope& scope, const std::string& collection, const std::string& name,
              const Tree& value, const std::function<Tree(const Tree&, const Tree&)>* reduce_fn,
              const std::function<Tree()>* init_fn) {
  if (!scope.is_mutable_collection(collection)) return false;
  Tree xs;
  if (const Tree* existing = scope.find_variable(collection, name)) {
    xs = *existing;
  } else {
    scope.reserve(name, collection, "variable");
    xs = init_fn != nullptr ? (*init_fn)() : Tree();
  }
  if (reduce_fn != nullptr) {
    xs = (*reduce_fn)(xs, value);
  } else {
    // Flax's tuple_reduce: append. A tuple is a dict keyed "0", "1", ...
    if (!xs.is_dict())
      throw Error("sow: \"" + name + "\" does not hold a tuple" + module_path_suffix());
    xs.set(std::to_string(xs.size()), value);
  }
  scope.put_variable(collection, name, std::move(xs));
  return true;
}

Array perturb_impl(core::Scope& scope, const std::string& name, const Array& value,
                   const std::string& collection) {
  if (scope.is_mutable_collection(collection) && !scope.has_variable(collection, name)) {
    scope.reserve(name, collection, "variable");
    scope.put_variable(collection, name, numpy::zeros_like(value));
  }
  if (scope.has_collection(collection)) {
    const Tree* old = scope.find_variable(collection, name);
    if (old == nullptr || !old->is_leaf()) {
      throw Error("Perturbation collection " + collection +
                  " present, but missing perturbation variable " + name + module_path_suffix());
    }
    return value + old->leaf();
  }
  return value;
}

void throw_merge_param(std::string_view name, bool both) {
  const std::string n(name);
  if (both) {
    throw Error("Parameter \"" + n +
                "\" was passed to the constructor and at call time. Should be passed just once." +
                module_path_suffix());
  }
  throw Error("Parameter \"" + n + "\" must be passed to the constructor or at call time." +
              module_path_suffix());
}

}  // namespace loom::nn::detail
