// nn::Sequential (flax.linen.Sequential): layers applied in order. Modules among the layers are
// named "layers_<index>" (the index counts every layer, functions included), as in Flax.
//
//   nn::Sequential mlp{.layers = {nn::Dense{.features = 128}, jnp::tanh, nn::Dense{.features =
//   10}}}; loom::Tree variables = mlp.init(loom::random::key(0), x);   // layers_0, layers_2
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/nn/module.hpp"

namespace loom::nn {

/// One layer of a Sequential: a module (called as a named submodule) or a function of an Array.
class Layer {
 public:
  template <typename M>
  requires detail::is_module_v<M> Layer(
      M module)  // NOLINT: implicit, so that {.layers = {nn::Dense{...}, ...}} reads naturally
      : fn_([m = std::move(module)](const Array& x, const std::string& name) -> Array {
          core::Scope* parent = detail::current_scope();
          if (parent == nullptr) {
            throw core::CallCompactUnboundModuleError(
                "Can't call compact methods on unbound modules (Sequential layer " + name + ")");
          }
          return detail::run_in(detail::named_child(*parent, name, detail::type_name<M>()), m, x);
        }) {}
  template <typename F>
  requires(!detail::is_module_v<std::decay_t<F>> && std::is_invocable_r_v<Array, F, const Array&>)
      Layer(F f)  // NOLINT
      : fn_([f = std::move(f)](const Array& x, const std::string&) -> Array { return f(x); }) {}
  /// Array(*)(const Array&) functions such as jnp::tanh.
  Layer(Array (*f)(const Array&))  // NOLINT
      : fn_([f](const Array& x, const std::string&) -> Array { return f(x); }) {}

  Array operator()(const Array& x, const std::string& name) const { return fn_(x, name); }

 private:
  std::function<Array(const Array&, const std::string&)> fn_;
};

struct Sequential : Module<Sequential> {
  std::vector<Layer> layers;
  Array call(const Array& x) const;
};

}  // namespace loom::nn
