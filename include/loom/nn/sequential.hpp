// nn::Sequential (flax.linen.Sequential): layers applied in order. Modules among the layers are
// named "layers_<index>" (the index counts every layer, functions included), as in Flax.
//
//   nn::Sequential mlp{.layers = {nn::Dense{.features = 128}, jnp::tanh, nn::Dense{.features =
//   10}}}; loom::Tree variables = mlp.init(loom::random::key(0), x);   // layers_0, layers_2
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/nn/function.hpp"
#include "loom/nn/module.hpp"

namespace loom::nn {

/// One layer of a Sequential: a module (called as a named submodule) or a function of an Array.
/// Layers compare as Flax's list field does: a module layer by the module's == (by identity, its
/// own copies only, when the module type has none), a function layer as nn::Function (a plain
/// function by address, a lambda by identity).
class Layer {
 public:
  template <typename M>
  requires detail::is_module_v<M> Layer(
      M module)  // NOLINT: implicit, so that {.layers = {nn::Dense{...}, ...}} reads naturally
      : Layer(std::make_shared<const M>(std::move(module))) {}
  template <typename F>
  requires(!detail::is_module_v<std::decay_t<F>> && std::is_invocable_r_v<Array, F, const Array&>)
      Layer(F f)  // NOLINT
      : Layer(std::make_shared<const Function<Array(const Array&)>>(std::move(f))) {}
  /// Array(*)(const Array&) functions such as jnp::tanh.
  Layer(Array (*f)(const Array&))  // NOLINT
      : Layer(std::make_shared<const Function<Array(const Array&)>>(f)) {}

  Array operator()(const Array& x, const std::string& name) const { return fn_(x, name); }

  friend bool operator==(const Layer& a, const Layer& b) {
    return a.same_ == b.same_ && a.same_(a.value_.get(), b.value_.get());
  }
  std::size_t hash() const { return hash_(value_.get()); }

 private:
  using Fn = Function<Array(const Array&)>;
  template <typename M>
  requires detail::is_module_v<M>
  explicit Layer(std::shared_ptr<const M> m)
      : fn_([m](const Array& x, const std::string& name) -> Array {
          core::Scope* parent = detail::current_scope();
          if (parent == nullptr) {
            throw core::CallCompactUnboundModuleError(
                "Can't call compact methods on unbound modules (Sequential layer " + name + ")");
          }
          return detail::run_in(detail::named_child(*parent, name, detail::type_name<M>()), *m, x);
        }),
        value_(m),
        same_(&same<M>),
        hash_(&hash_of<M>) {}
  explicit Layer(std::shared_ptr<const Fn> f)
      : fn_([f](const Array& x, const std::string&) -> Array { return (*f)(x); }),
        value_(f),
        same_(&same<Fn>),
        hash_(&hash_of<Fn>) {}
  // Per-type comparison and hash of the type-erased value (same_ also tells the type apart).
  template <typename T>
  static bool same(const void* a, const void* b) {
    if constexpr (std::equality_comparable<T>) {
      return *static_cast<const T*>(a) == *static_cast<const T*>(b);
    } else {
      return a == b;
    }
  }
  template <typename T>
  static std::size_t hash_of(const void* a) {
    if constexpr (requires(const T& t) { std::hash<T>{}(t); }) {
      return std::hash<T>{}(*static_cast<const T*>(a));
    } else {
      return std::hash<std::string>{}(detail::type_name<T>());
    }
  }

  std::function<Array(const Array&, const std::string&)> fn_;
  std::shared_ptr<const void> value_;  // the module or Function, for == and hash
  bool (*same_)(const void*, const void*);
  std::size_t (*hash_)(const void*);
};

struct Sequential : Module<Sequential> {
  std::vector<Layer> layers;
  bool operator==(const Sequential&) const = default;
  Array call(const Array& x) const;
};

}  // namespace loom::nn

template <>
struct std::hash<loom::nn::Layer> {
  std::size_t operator()(const loom::nn::Layer& l) const { return l.hash(); }
};
LOOM_NN_HASH_FIELDS(loom::nn::Sequential, m.layers)
