// loom::vmap: vectorizing map (jax.vmap). f is written for one example; vmap(f) maps it over a
// batch axis of its arguments.
//
//   auto f = [](const loom::Array& x, const loom::Array& w) { return jnp::dot(w, x); };
//   // x: (8, 3) batched along 0; w: (2, 3) shared by every example -> (8, 2)
//   loom::Array y = loom::vmap(f, {.in_axes = {0, std::nullopt}})(x, w);
//   // the batch along axis 1 of the result: (2, 8)
//   loom::Array yt = loom::vmap(f, {.in_axes = {0, std::nullopt}, .out_axes = 1})(x, w);
//
//   // Per-example gradients: grad of the loss of one example, mapped over the batch.
//   auto loss = [](const loom::Tree& params, const loom::Array& x, const loom::Array& y) {
//     return jnp::sum(jnp::square(jnp::dot(x, params.at("w").leaf()) - y));
//   };
//   loom::Tree per_example = loom::vmap(loom::grad(loss),
//                                       {.in_axes = {std::nullopt, 0, 0}})(params, xs, ys);
//   // per_example.at("w") has shape (batch,) + w.shape()
//
// Arguments are Arrays, loom::Trees or std::vector<Array>; a Tree argument's leaves all use its
// argument's in_axes entry. How it works: f is traced once on example 0 of the batched
// arguments (see loom/jit.hpp: its side effects run once, and reading a batched value on the
// host inside f is a loom::Error), then the graph is evaluated on the whole batch: primitives
// that broadcast elementwise run once on the batch, primitives with a batching rule
// (contractions, reductions, shape ops, softmax, losses, conv, pooling...) run once on the batch
// with their axes shifted past the batch axis, and the rest run once per example and the results
// are stacked (a primitive with no batched input runs once). Results equal a loop over the
// examples up to floating-point reassociation (a batched GEMM may sum in another order). vmap nests
// (an inner vmap's batched evaluation is what the outer one traces) and composes with grad and jit.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/error.hpp"
#include "loom/jit.hpp"
#include "loom/tree.hpp"

namespace loom {

struct VmapOptions {
  /// One entry per argument: the axis it is batched along (negative counts from the end), or
  /// std::nullopt when every example shares it. Empty: every argument batched along axis 0.
  std::vector<std::optional<int>> in_axes;
  /// Where the batch axis goes in every result leaf; std::nullopt requires results that do not
  /// depend on a batched argument (returned once, unstacked). An unbatched result with an axis
  /// is broadcast along it, as JAX does.
  std::optional<int> out_axes = 0;
};

namespace detail {

/// The batched arguments, checked: `leaves` flattened in argument order, `arg_of_leaf` the
/// argument each came from, `axes` its in_axes entry.
struct VmapBatch {
  std::int64_t size = 0;
  std::vector<Array> example;  // example 0 of each batched leaf; unbatched leaves as given
  std::vector<Array> batched;  // the batch moved to axis 0; unbatched leaves as given
  std::vector<bool> is_batched;
};
VmapBatch vmap_prepare(const std::vector<Array>& leaves, const std::vector<int>& arg_of_leaf,
                       const std::vector<std::optional<int>>& axes);
/// Evaluates a graph traced on batch.example over the whole batch; results with the batch axis
/// at `out_axes`.
std::vector<Array> vmap_evaluate(const Graph& graph, const VmapBatch& batch,
                                 std::optional<int> out_axes);
/// How vmap ran each primitive with a batched input on this thread, by primitive name: once on
/// the batch (elementwise or its batching rule) or once per example (loop). Accumulates until
/// reset (`vmap_counts() = {}`); for tests and for finding primitives that still loop.
struct VmapCounts {
  std::map<std::string, std::int64_t> elementwise, rule, loop;
};
VmapCounts& vmap_counts();
/// Whether vmap uses batching rules on this thread (default true); false runs every
/// non-elementwise primitive once per example, as before the rules existed (for benchmarks and
/// for checking a rule against the loop).
bool& vmap_rules_enabled();
[[noreturn]] void throw_vmap_in_axes_count(std::size_t in_axes, std::size_t args);

}  // namespace detail

/// jax.vmap(f, in_axes, out_axes): see the top of this header.
template <typename F>
auto vmap(F f, VmapOptions options = {}) {
  return [f = std::move(f), options](const auto&... args) {
    using R = std::decay_t<decltype(f(args...))>;
    static_assert(detail::is_traceable<R>(),
                  "loom::vmap: f must return an Array, a Tree, a std::vector<Array> or a "
                  "pair/tuple of them");
    static_assert((detail::is_traceable<std::decay_t<decltype(args)>>() && ...),
                  "loom::vmap: arguments must be Arrays, Trees or std::vector<Array>");
    constexpr std::size_t kArgs = sizeof...(args);
    if (!options.in_axes.empty() && options.in_axes.size() != kArgs)
      detail::throw_vmap_in_axes_count(options.in_axes.size(), kArgs);
    std::vector<Array> leaves;
    std::vector<int> arg_of_leaf;
    std::vector<std::optional<int>> axes;
    int index = 0;
    auto add = [&](const auto& x) {
      const std::size_t before = leaves.size();
      detail::flatten_into(x, leaves);
      for (std::size_t i = before; i < leaves.size(); ++i) {
        arg_of_leaf.push_back(index);
        axes.push_back(options.in_axes.empty() ? std::optional<int>(0)
                                               : options.in_axes[std::size_t(index)]);
      }
      ++index;
    };
    (add(args), ...);
    detail::VmapBatch batch = detail::vmap_prepare(leaves, arg_of_leaf, axes);
    std::optional<R> traced;
    detail::Captured c = detail::capture(
        [&](const std::vector<Array>& copies) {
          std::size_t pos = 0;
          std::tuple<std::decay_t<decltype(args)>...> rebuilt{
              detail::unflatten_from(args, copies, &pos)...};
          traced.emplace(std::apply(f, rebuilt));
          std::vector<Array> out;
          detail::flatten_into(*traced, out);
          return out;
        },
        batch.example, batch.is_batched, "vmap");
    std::vector<Array> out = detail::vmap_evaluate(*c.graph, batch, options.out_axes);
    std::size_t pos = 0;
    return detail::unflatten_from(*traced, out, &pos);
  };
}

}  // namespace loom
