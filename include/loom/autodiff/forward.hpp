// Forward mode and Jacobians: jvp, linearize, jacfwd, jacrev, hessian (jax.jvp, jax.linearize,
// jax.jacfwd, jax.jacrev, jax.hessian).
//
//   auto f = [](const loom::Array& x) { return jnp::sin(x) * x; };
//   auto [y, y_dot] = loom::jvp(f, x, t);            // y = f(x), y_dot = J(x) t
//   auto [y2, f_jvp] = loom::linearize(f, x);        // f_jvp(t) == y_dot, f evaluated once
//   loom::Array J = loom::jacfwd(f)(x);              // shape y.shape + x.shape
//   loom::Array H = loom::hessian([](const loom::Array& v) { return jnp::sum(v * v * v); })(x);
//
// How forward mode is computed. jvp pushes tangents forward through the primitives as f runs
// (JAX's JVPTrace): one pass, no backward recorded, about 2-3x the cost of f. Each primitive's
// record declares its forward rule (src/detail/primitive.hpp): linear ops (reshape, transpose,
// slicing, sums, add, ...) map the tangents with their own kernel, bilinear ops (multiply,
// contractions, conv) run once per perturbed operand, elementwise ops have explicit rules
// (exp: t * y), ops with a symmetric Jacobian (nn activations, softmax) run their own fused VJP
// on the tangent, and the rest use the rule derived from their own VJP on that op alone
// (J t = grad_g <vjp(g), t>, exact). detail::forward_rules_used() lists which rule each
// primitive reached. jvp levels are tagged, so jvp of jvp does not confuse perturbations, and
// rules are loom ops, so grad of jvp, jvp of grad, jit(jvp) and vmap(jvp) compose.
// custom_jvp's rule is its forward rule; a custom_vjp function under jvp uses the rule derived
// from its bwd (JAX raises an error there). checkpoint under jvp runs f directly.
//
// linearize stays by transposition: the recorded pullback ct -> vjp(f, x)(ct) is linear in ct
// and its own VJP, evaluated at t, is J t. It runs f once and each f_jvp(t) costs one backward
// pass, the recording's memory (f's residuals and the backward graph) living as long as f_jvp
// does; JAX's jvp + partial evaluation would need a staging of the tangent computation that
// loom's eager trace does not have. jacfwd runs one jvp per input element, jacrev the pullback
// once per output element; hessian is jacfwd(jacrev(f)), as in JAX.
//
// Primals and tangents are an Array or a loom::Tree of the same structure; each tangent leaf must
// have its primal's shape and dtype (a loom::Error otherwise). Integer and bool primals have no
// tangent direction: pass zeros of their dtype; their output tangents are zeros.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/autodiff.hpp"
#include "loom/tree.hpp"

namespace loom {

namespace detail {
/// f linearized at `primals`: f's output, and the linear map from tangent leaves to output
/// tangent leaves (one per leaf of the output).
struct Linearized {
  Tree output;
  std::function<std::vector<Array>(const std::vector<Array>& tangents)> jvp;
};
Linearized linearize_leaves(const std::function<Tree(const std::vector<Array>&)>& f,
                            const std::vector<Array>& primals, const char* fn_name);
/// f's output and its output tangent leaves, by the forward trace (src/autodiff/jvp_trace.cpp).
struct Forwarded {
  Tree output;
  std::vector<Array> tangents;  // one per leaf of output
};
Forwarded jvp_leaves(const std::function<Tree(const std::vector<Array>&)>& f,
                     const std::vector<Array>& primals, const std::vector<Array>& tangents);
/// Which forward rule a primitive reached under jvp used on this thread (tests, diagnostics):
///   auto used = loom::detail::forward_rules_used();  // {("exp", explicit_rule), ...}
enum class ForwardRuleKind { linear, bilinear, symmetric, explicit_rule, derived };
std::vector<std::pair<std::string, ForwardRuleKind>> forward_rules_used();
void clear_forward_rules_used();
/// Throws unless each tangent has its primal's shape and dtype (JAX's jvp TypeError/ValueError).
void check_tangents(const std::vector<Array>& primals, const std::vector<Array>& tangents,
                    const char* fn_name);
/// The output as Y (Array or Tree), detached at top level.
Array finish_output(const Array& out);
Tree finish_output(const Tree& out);
/// Jacobian of Array -> Array maps, shape out.shape + x.shape.
Array jacobian_rev(const std::function<Array(const Array&)>& f, const Array& x);
Array jacobian_fwd(const std::function<Array(const Array&)>& f, const Array& x);

template <typename X>
void check_tangent_structure(const X& primals, const X& tangents, const char* fn_name) {
  if constexpr (std::is_same_v<X, Tree>) {
    auto blank = [](const Array&) { return Array(); };
    if (!same_structure(tree_map(blank, primals), tree_map(blank, tangents))) {
      throw Error(std::string(fn_name) +
                  ": primal and tangent arguments must have the same tree structure, got " +
                  tree_map(blank, primals).str() + " and " + tree_map(blank, tangents).str());
    }
  }
}
}  // namespace detail

/// linearize(f, primals) -> (f(primals), f_jvp) with f_jvp(tangents) == jvp(f, primals,
/// tangents).second; f runs once, f_jvp may be called many times.
template <typename F, typename X>
auto linearize(F f, const X& primals) {
  static_assert(std::is_same_v<X, Array> || std::is_same_v<X, Tree>,
                "loom::linearize takes an Array or a loom::Tree of primals");
  using Y = std::decay_t<decltype(f(primals))>;
  static_assert(std::is_same_v<Y, Array> || std::is_same_v<Y, Tree>,
                "loom::linearize: f must return an Array or a loom::Tree");
  auto lin = detail::linearize_leaves(
      [&](const std::vector<Array>& leaves) -> Tree {
        return Tree(f(detail::rebuild(primals, leaves)));
      },
      detail::leaves_of(primals), "linearize");
  Y out;
  if constexpr (std::is_same_v<Y, Array>)
    out = detail::finish_output(lin.output.leaf());
  else
    out = detail::finish_output(lin.output);
  std::function<Y(const X&)> f_jvp = [map = std::move(lin.jvp), like_out = lin.output,
                                      primals](const X& tangents) -> Y {
    detail::check_tangent_structure(primals, tangents, "linearize");
    std::vector<Array> t = detail::leaves_of(tangents);
    detail::check_tangents(detail::leaves_of(primals), t, "linearize");
    std::vector<Array> out_t = map(t);
    if constexpr (std::is_same_v<Y, Array>)
      return out_t.at(0);
    else
      return tree_unflatten(tree_flatten(like_out).second, std::move(out_t));
  };
  return std::make_pair(std::move(out), std::move(f_jvp));
}

/// jvp(f, primals, tangents) -> (f(primals), J(primals) tangents), in one forward pass.
template <typename F, typename X>
auto jvp(F f, const X& primals, const X& tangents) {
  static_assert(std::is_same_v<X, Array> || std::is_same_v<X, Tree>,
                "loom::jvp takes an Array or a loom::Tree of primals");
  using Y = std::decay_t<decltype(f(primals))>;
  static_assert(std::is_same_v<Y, Array> || std::is_same_v<Y, Tree>,
                "loom::jvp: f must return an Array or a loom::Tree");
  detail::check_tangent_structure(primals, tangents, "jvp");
  detail::check_tangents(detail::leaves_of(primals), detail::leaves_of(tangents), "jvp");
  detail::Forwarded r = detail::jvp_leaves(
      [&](const std::vector<Array>& leaves) -> Tree {
        return Tree(f(detail::rebuild(primals, leaves)));
      },
      detail::leaves_of(primals), detail::leaves_of(tangents));
  Y out, tangent_out;
  if constexpr (std::is_same_v<Y, Array>) {
    out = detail::finish_output(r.output.leaf());
    tangent_out = detail::finish_output(r.tangents.at(0));
  } else {
    out = detail::finish_output(r.output);
    tangent_out =
        detail::finish_output(tree_unflatten(tree_flatten(r.output).second, std::move(r.tangents)));
  }
  return std::make_pair(std::move(out), std::move(tangent_out));
}

/// jacrev(f)(x): the Jacobian of an Array -> Array map by reverse mode (one pullback per output
/// element); shape f(x).shape + x.shape.
template <typename F>
auto jacrev(F f) {
  return [f = std::move(f)](const Array& x) {
    return detail::jacobian_rev([&f](const Array& v) -> Array { return f(v); }, x);
  };
}

/// jacfwd(f)(x): the same Jacobian by forward mode (one jvp per input element).
template <typename F>
auto jacfwd(F f) {
  return [f = std::move(f)](const Array& x) {
    return detail::jacobian_fwd([&f](const Array& v) -> Array { return f(v); }, x);
  };
}

/// hessian(f)(x) = jacfwd(jacrev(f))(x): shape f(x).shape + x.shape + x.shape.
template <typename F>
auto hessian(F f) {
  return jacfwd(jacrev(std::move(f)));
}

}  // namespace loom
