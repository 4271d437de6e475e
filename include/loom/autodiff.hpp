// Reverse-mode autodiff in JAX's functional style: grad, value_and_grad, vjp, stop_gradient.
//
//   auto f = [](const loom::Array& x) { return jnp::sum(x * x); };
//   loom::Array g = loom::grad(f)(x);                        // 2 * x
//   auto [v, g2] = loom::value_and_grad(f)(x);
//   // with auxiliary output: f returns std::pair<Array, Aux>
//   auto [v_aux, g3] = loom::value_and_grad(loss_fn, {.has_aux = true})(params, batch);
//   // -> v_aux is std::pair<Array, Aux>
//   auto [y, pullback] = loom::vjp(f, x);   Array gx = pullback(loom::Array::scalar(1.f));
//
// The differentiated argument is the first one and is an Array or a loom::Tree; further
// arguments are passed through untouched. The gradient has the argument's structure and dtype.
// Nothing is mutated and nothing global outlives the call. Integer and bool outputs are not
// differentiated (their cotangent is zero).
//
// Transformations nest, as in JAX: the backward pass is itself differentiable, so
//   auto d2 = loom::grad(loom::grad(f));          // grad of grad: -sin for f = sin
// works, and so do jvp, linearize, jacfwd, jacrev and hessian (loom/autodiff/forward.hpp) and
// custom_vjp, custom_jvp and checkpoint (loom/autodiff/custom.hpp). Outputs of grad, vjp and
// value_and_grad are detached at top level; inside an outer transformation they keep their
// history so the outer one differentiates through them.
#pragma once

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/tree.hpp"

namespace loom {

/// The same values, with gradients blocked (jax.lax.stop_gradient).
Array stop_gradient(const Array& x);
Tree stop_gradient(const Tree& x);

namespace detail {
/// True while a grad trace is active on this thread (the backward pass is then recorded too).
bool tracing();
/// Runs f on traced copies of `leaves`; returns f's output and a pullback mapping an output
/// cotangent to one cotangent per leaf (zeros where the output does not depend on a leaf).
struct Traced {
  Tree output;
  std::function<std::vector<Array>(const Tree& cotangent)> pullback;
  /// The same, with an invalid Array instead of zeros for leaves that get no cotangent.
  std::function<std::vector<Array>(const Tree& cotangent)> sparse_pullback;
};
Traced trace(const std::function<Tree(const std::vector<Array>&)>& f,
             const std::vector<Array>& leaves);
/// Throws unless `out` is a scalar floating array (what grad requires).
void check_scalar_output(const Array& out, const char* fn_name);
/// Throws (as JAX's TypeError) unless every leaf of the differentiated argument is floating;
/// a Tree's message names the offending leaf's path.
void check_differentiable_input(const Array& x, const char* fn_name);
void check_differentiable_input(const Tree& x, const char* fn_name);

template <typename X>
std::vector<Array> leaves_of(const X& x) {
  if constexpr (std::is_same_v<X, Array>)
    return {x};
  else
    return tree_leaves(x);
}
template <typename X>
X rebuild(const X& like, std::vector<Array> leaves) {
  if constexpr (std::is_same_v<X, Array>) {
    return leaves.at(0);
  } else {
    return tree_unflatten(tree_flatten(like).second, std::move(leaves));
  }
}
inline const Array& primary_output(const Array& out) {
  return out;
}
template <typename Aux>
const Array& primary_output(const std::pair<Array, Aux>& out) {
  return out.first;
}
template <typename Aux>
Aux detach_aux(Aux aux) {
  if constexpr (std::is_same_v<Aux, Array> || std::is_same_v<Aux, Tree>)
    return stop_gradient(aux);
  else
    return aux;
}
}  // namespace detail

struct GradOptions {
  bool has_aux = false;  // f returns std::pair<Array, Aux>; Aux is returned alongside
  /// As JAX's allow_int: when false (the default), an integer or bool argument is a loom::Error
  /// ("grad requires real- or complex-valued inputs ..., but got int32"); when true its
  /// gradient is zeros of its dtype (JAX returns float0 zeros).
  bool allow_int = false;
};

/// value_and_grad(f)(x, rest...) -> std::pair<value, gradient of f with respect to x>.
template <typename F>
auto value_and_grad(F f, GradOptions options = {}) {
  return [f = std::move(f), options](const auto& x, const auto&... rest) {
    using X = std::decay_t<decltype(x)>;
    static_assert(std::is_same_v<X, Array> || std::is_same_v<X, Tree>,
                  "loom::grad differentiates an Array or a loom::Tree argument");
    using R = std::decay_t<decltype(f(x, rest...))>;
    constexpr bool kPair = !std::is_same_v<R, Array>;
    if (kPair != options.has_aux) {
      throw Error(options.has_aux ? "grad: has_aux=true requires f to return std::pair<Array, Aux>"
                                  : "grad: f returns a pair; pass {.has_aux = true}");
    }
    if (!options.allow_int) detail::check_differentiable_input(x, "grad");
    std::optional<R> result;
    auto traced = detail::trace(
        [&](const std::vector<Array>& leaves) -> Tree {
          X arg = detail::rebuild(x, leaves);
          result.emplace(f(arg, rest...));
          return Tree(detail::primary_output(*result));
        },
        detail::leaves_of(x));
    const Array& out = traced.output.leaf();
    detail::check_scalar_output(out, "grad");
    Array one = Array::scalar(1.0, DType::float64).astype(out.dtype());
    X g = detail::rebuild(x, traced.pullback(Tree(one)));
    const bool top = !detail::tracing();  // inside an outer trace, outputs keep history
    Array v = top ? out.detached() : out;
    if constexpr (kPair) {
      auto value = std::make_pair(
          std::move(v), top ? detail::detach_aux(std::move(result->second)) : result->second);
      return std::make_pair(std::move(value), std::move(g));
    } else {
      return std::make_pair(std::move(v), std::move(g));
    }
  };
}

/// grad(f)(x, rest...) -> gradient of the scalar f with respect to x (same structure as x).
/// With {.has_aux = true} returns std::pair<gradient, Aux>.
template <typename F>
auto grad(F f, GradOptions options = {}) {
  return [vg = value_and_grad(std::move(f), options)](const auto& x, const auto&... rest) {
    auto [value, g] = vg(x, rest...);
    using V = decltype(value);
    if constexpr (std::is_same_v<V, Array>)
      return g;
    else
      return std::make_pair(std::move(g), std::move(value.second));
  };
}

/// vjp(f, x) -> (f(x), pullback) where pullback(cotangent) returns the cotangent of x.
/// f maps an Array or Tree to an Array or Tree; the cotangent has the output's structure.
template <typename F, typename X>
auto vjp(F f, const X& x) {
  static_assert(std::is_same_v<X, Array> || std::is_same_v<X, Tree>);
  using Y = std::decay_t<decltype(f(x))>;
  static_assert(std::is_same_v<Y, Array> || std::is_same_v<Y, Tree>);
  auto traced = detail::trace(
      [&](const std::vector<Array>& leaves) -> Tree { return Tree(f(detail::rebuild(x, leaves))); },
      detail::leaves_of(x));
  Y out;
  const bool top = !detail::tracing();  // inside an outer trace, outputs keep history
  if constexpr (std::is_same_v<Y, Array>)
    out = top ? traced.output.leaf().detached() : traced.output.leaf();
  else
    out = top ? stop_gradient(traced.output) : traced.output;
  std::function<X(const Y&)> pullback = [pb = traced.pullback, x](const Y& ct) {
    return detail::rebuild(x, pb(Tree(ct)));
  };
  return std::make_pair(std::move(out), std::move(pullback));
}

}  // namespace loom

// Forward mode, Jacobians and custom rules build on the above.
#include "loom/autodiff/forward.hpp"  // IWYU pragma: export
#include "loom/autodiff/custom.hpp"  // IWYU pragma: export
