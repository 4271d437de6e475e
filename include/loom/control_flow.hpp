// jax.lax's structured control flow over loom::Tree values: scan, fori_loop, while_loop, cond
// and switch_. They sit in the transformations layer (they take trees and closures) but keep
// JAX's namespace, so `lax.scan` is `lax::scan`.
//
//   namespace lax = loom::lax;
//   // cumulative sum: the carry is the running total, ys stacks every partial sum
//   auto [total, partial] = lax::scan(
//       [](const loom::Tree& c, const loom::Tree& x) {
//         loom::Array s = c.leaf() + x.leaf();
//         return std::pair<loom::Tree, loom::Tree>{s, s};
//       },
//       loom::Array::scalar(0.0f), loom::Array{1.f, 2.f, 3.f});
//   // total.leaf() == 6, partial.leaf() == [1, 3, 6]
//   loom::Tree y = lax::cond(x_sum > 0.0, [](const loom::Tree& v) { return v; },
//                            [](const loom::Tree& v) { return loom::Tree(-v.leaf()); }, x);
//
// Semantics as JAX's, checked the same way: a body's carry output must have its input's tree
// structure, shapes and dtypes (a loom::Error names the first leaf that differs); every branch
// of cond/switch_ must return the same structure, shapes and dtypes.
//
// How they run, and where that differs from JAX:
// - Eagerly they are C++ loops over loom ops, so loom::grad differentiates all of them,
//   while_loop and fori_loop with any bounds included (JAX refuses reverse mode through
//   while_loop; loom records every iteration on the tape, which costs memory per iteration).
// - Under loom::jit and loom::vmap, scan and fori_loop unroll into the traced graph (the trace
//   grows with the trip count; JAX keeps one loop). cond and switch_ evaluate every branch and
//   select the result with jnp::where, as JAX does for a batched predicate under vmap; the
//   branches must therefore be free of side effects. while_loop needs its condition on the host
//   each iteration, so under jit its condition must not depend on traced values (reading one is
//   the loom::Error jit raises for any host read of a traced value).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/tree.hpp"

namespace loom::lax {

struct ScanOptions {
  /// Number of iterations; required when xs is empty, else it must equal xs's leading size.
  std::optional<std::int64_t> length = std::nullopt;
  /// Iterate from the last slice to the first; ys[i] still pairs with xs[i] (as JAX).
  bool reverse = false;
  /// Accepted for JAX parity; eager loom has no loop body to unroll (must be >= 1).
  int unroll = 1;
};

/// body(carry, x) -> (new carry, y).
using ScanBody = std::function<std::pair<Tree, Tree>(const Tree& carry, const Tree& x)>;

/// jax.lax.scan: runs body over the leading axis of every leaf of xs, threading the carry;
/// returns (final carry, ys), ys stacking each step's y along a new leading axis. xs may be an
/// empty tree (then options.length gives the trip count and body gets an empty x).
///   auto [h, hs] = lax::scan(cell_step, h0, inputs_time_major);
std::pair<Tree, Tree> scan(const ScanBody& body, const Tree& init, const Tree& xs = Tree(),
                           ScanOptions options = {});

/// jax.lax.fori_loop: val = body(i, val) for i in [lower, upper); returns val.
///   Tree v = lax::fori_loop(0, 10, [](std::int64_t i, const Tree& v) { ... }, init);
Tree fori_loop(std::int64_t lower, std::int64_t upper,
               const std::function<Tree(std::int64_t i, const Tree& val)>& body, const Tree& init);

/// jax.lax.while_loop: while cond_fun(val) (a scalar bool or integer Array) do val = body_fun(val).
///   Tree v = lax::while_loop([](const Tree& v) { return v.leaf() < 10.0; },
///                            [](const Tree& v) { return Tree(v.leaf() * 2.0); }, x);
Tree while_loop(const std::function<Array(const Tree& val)>& cond_fun,
                const std::function<Tree(const Tree& val)>& body_fun, const Tree& init);

using Branch = std::function<Tree(const Tree& operand)>;

/// jax.lax.cond: true_fun(operand) if pred else false_fun(operand). pred is a scalar bool or
/// integer Array (nonzero is true).
Tree cond(const Array& pred, const Branch& true_fun, const Branch& false_fun, const Tree& operand);
/// A host bool needs no select: only the chosen branch runs, also under jit.
Tree cond(bool pred, const Branch& true_fun, const Branch& false_fun, const Tree& operand);

/// jax.lax.switch: branches[index](operand), index a scalar integer Array clamped to
/// [0, branches.size() - 1] as JAX clamps it.
///   Tree y = lax::switch_(k, {relu_branch, tanh_branch, identity_branch}, x);
Tree switch_(const Array& index, const std::vector<Branch>& branches, const Tree& operand);

}  // namespace loom::lax
