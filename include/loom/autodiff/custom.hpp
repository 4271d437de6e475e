// Custom differentiation rules and rematerialization: custom_vjp, custom_jvp, checkpoint
// (jax.custom_vjp, jax.custom_jvp, jax.checkpoint / jax.remat).
//
//   // The JAX docs' clip_gradient: identity forward, cotangent clipped to [lo, hi].
//   auto clip_gradient = loom::custom_vjp(
//       [](const Array& lo, const Array& hi, const Array& x) { return x; },
//       [](const Array& lo, const Array& hi, const Array& x) {
//         return std::make_pair(x, std::vector<Array>{lo, hi});  // (output, residuals)
//       },
//       [](const std::vector<Array>& res, const Array& g) {   // one cotangent per input;
//         return std::vector<Array>{Array(), Array(), jnp::clip(g, res[0], res[1])};  // Array():
//       });                                                                          // none
//
//   // The JAX docs' log1pexp: a stable derivative where the naive one is inf/inf = nan.
//   auto log1pexp = loom::custom_jvp(
//       [](const Array& x) { return jnp::log(1.0 + jnp::exp(x)); },
//       [](const std::vector<Array>& p, const std::vector<Array>& t) {
//         Array y = jnp::log(1.0 + jnp::exp(p[0]));
//         return std::make_pair(y, (1.0 - 1.0 / (1.0 + jnp::exp(p[0]))) * t[0]);
//       });
//
//   auto block = loom::checkpoint([](const Tree& p, const Array& x) { return layer(p, x); });
//
// custom_vjp(f, fwd, bwd): f(xs...) -> Array computes the value when nothing differentiates it.
// Under a grad trace, fwd(xs...) -> (output, residuals) runs instead and bwd(residuals, g)
// returns one cotangent per input x (an invalid Array() for "none"; a wrong count or shape is a
// loom::Error naming the input). Residuals keep their history, so bwd itself may be
// differentiated (grad of grad). Unlike JAX, jvp also works here: it transposes the recorded bwd.
//
// custom_jvp(f, rule): rule(primals, tangents) -> (output, tangent_output), linear in tangents.
// Reverse mode uses the transpose of the rule's tangent map (traced on zero tangents and pulled
// back), as JAX does; jvp transposes that again, which reproduces the rule exactly.
//
// checkpoint(f)(args...): args are Arrays, Trees or pass-through values; f returns an Array or a
// Tree. The forward pass runs f without recording (its internal residuals are freed at once);
// the backward pass re-runs f under a trace and pulls the cotangent back through it, so memory
// is traded for one more evaluation of f. Gradients are the same as without checkpoint, bit for
// bit. A Tree output re-runs f once per output leaf that receives a cotangent. f (and bwd, and
// the custom_jvp rule) is kept until the backward pass runs: capture by value, not by reference.
#pragma once

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/autodiff.hpp"
#include "loom/tree.hpp"

namespace loom {

namespace detail {
/// True when some input carries autodiff history (only then is a custom rule's node needed).
bool any_history(const std::vector<const Array*>& inputs);
/// Attaches to `out` a node over `inputs` whose VJP is `bwd` (checked: one cotangent of the
/// input's shape per input, or an invalid Array for none).
void attach_custom_vjp(Array& out, const std::vector<const Array*>& inputs,
                       std::function<std::vector<Array>(const Array& g)> bwd,
                       const char* fn_name);
using LeafFn = std::function<Tree(const std::vector<Array>&)>;
/// custom_jvp under a trace: f's value with the transposed rule as its VJP.
Array custom_jvp_call(const LeafFn& f, const LeafFn& tangent_map_of,
                      const std::vector<Array>& primals);
/// checkpoint under a trace: f's output, each floating leaf's VJP re-running f.
Tree checkpoint_call(const LeafFn& f, const std::vector<Array>& leaves);

template <typename T>
void append_leaves(std::vector<Array>& out, const T& v) {
  if constexpr (std::is_same_v<T, Array> || std::is_same_v<T, Tree>) {
    for (Array& a : leaves_of(v)) out.push_back(std::move(a));
  }
}
// Rebuilds an argument like `like` from leaves[k...], advancing k.
template <typename T>
T take_leaves(const T& like, const std::vector<Array>& leaves, std::size_t& k) {
  if constexpr (std::is_same_v<T, Array> || std::is_same_v<T, Tree>) {
    const std::size_t n = leaves_of(like).size();
    std::vector<Array> part(leaves.begin() + std::ptrdiff_t(k),
                            leaves.begin() + std::ptrdiff_t(k + n));
    k += n;
    return rebuild(like, std::move(part));
  } else {
    return like;
  }
}
template <std::size_t... I>
auto to_tuple_impl(const std::vector<Array>& v, std::index_sequence<I...>) {
  return std::make_tuple(v[I]...);
}
template <std::size_t N>
auto to_tuple(const std::vector<Array>& v) {
  return to_tuple_impl(v, std::make_index_sequence<N>{});
}
}  // namespace detail

/// custom_vjp(f, fwd, bwd)(xs...) with Array arguments (see the file comment).
template <typename F, typename Fwd, typename Bwd>
auto custom_vjp(F f, Fwd fwd, Bwd bwd) {
  return [f = std::move(f), fwd = std::move(fwd), bwd = std::move(bwd)](
             const auto&... xs) -> Array {
    static_assert((std::is_same_v<std::decay_t<decltype(xs)>, Array> && ...),
                  "loom::custom_vjp: every argument is an Array");
    const std::vector<const Array*> inputs{&xs...};
    if (!detail::tracing() || !detail::any_history(inputs)) return f(xs...);
    auto [out, res] = fwd(xs...);
    Array y = out.detached();
    detail::attach_custom_vjp(
        y, inputs, [bwd, res = std::move(res)](const Array& g) { return bwd(res, g); },
        "custom_vjp");
    return y;
  };
}

/// custom_jvp(f, rule)(xs...) with Array arguments (see the file comment).
template <typename F, typename Rule>
auto custom_jvp(F f, Rule rule) {
  return [f = std::move(f), rule = std::move(rule)](const auto&... xs) -> Array {
    static_assert((std::is_same_v<std::decay_t<decltype(xs)>, Array> && ...),
                  "loom::custom_jvp: every argument is an Array");
    const std::vector<const Array*> inputs{&xs...};
    if (!detail::tracing() || !detail::any_history(inputs)) return f(xs...);
    std::vector<Array> primals{xs...};
    return detail::custom_jvp_call(
        [&f](const std::vector<Array>& p) -> Tree {
          return std::apply([&f](const auto&... a) { return Tree(f(a...)); },
                            detail::to_tuple<sizeof...(xs)>(p));
        },
        [rule](const std::vector<Array>& pt) -> Tree {
          // pt = primals ++ tangents
          const std::size_t n = pt.size() / 2;
          std::vector<Array> p(pt.begin(), pt.begin() + std::ptrdiff_t(n));
          std::vector<Array> t(pt.begin() + std::ptrdiff_t(n), pt.end());
          return Tree(rule(p, t).second);
        },
        primals);
  };
}

/// checkpoint(f)(args...): f's value, its residuals recomputed in the backward pass.
template <typename F>
auto checkpoint(F f) {
  return [f = std::move(f)](const auto&... args) {
    using Y = std::decay_t<decltype(f(args...))>;
    static_assert(std::is_same_v<Y, Array> || std::is_same_v<Y, Tree>,
                  "loom::checkpoint: f must return an Array or a loom::Tree");
    if (!detail::tracing()) return f(args...);
    std::vector<Array> leaves;
    (detail::append_leaves(leaves, args), ...);
    Tree out = detail::checkpoint_call(
        // Captured by value: the backward pass calls it after this call has returned.
        [f, args...](const std::vector<Array>& l) -> Tree {
          std::size_t k = 0;
          // Braced initialization evaluates left to right, so the leaves are consumed in order.
          std::tuple<std::decay_t<decltype(args)>...> rebuilt{detail::take_leaves(args, l, k)...};
          return Tree(std::apply(f, rebuilt));
        },
        leaves);
    if constexpr (std::is_same_v<Y, Array>)
      return out.leaf();
    else
      return out;
  };
}

}  // namespace loom
