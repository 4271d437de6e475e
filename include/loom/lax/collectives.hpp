// loom::lax collectives over named axes: jax.lax.psum / pmean / axis_size.
//
// In JAX a named axis comes from pmap/shard_map; in loom a higher layer binds a name to a
// reducer (loom::distributed binds one over processes). Layers below it (nn::BatchNorm's
// axis_name) call lax::pmean without knowing who implements the axis.
//
//   lax::bind_axis("batch", {.psum = my_sum, .size = 4});
//   loom::Array m = lax::pmean(jnp::mean(x, 0), "batch");   // the mean over all 4 members
//   lax::unbind_axis("batch");
//
// An unbound name is a loom::Error naming it and the bound ones (JAX's "unbound axis name").
// Both ops are differentiable: psum's VJP is psum of the cotangent (JAX's transpose rule),
// so a loss computed on every member gets the cross-member terms of its gradient.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "loom/array.hpp"

namespace loom::lax {

/// How a named axis reduces: `psum` sums a (history-free) array over every member of the axis
/// and returns the same total on each; `size` is the number of members.
struct AxisReducer {
  std::function<Array(const Array&)> psum;
  std::int64_t size = 1;
};

/// Binds (or rebinds) `name`. As in JAX, every member must call the collectives of an axis in
/// the same order.
///   lax::bind_axis("batch", {.psum = [](const loom::Array& a) { return a; }, .size = 1});
void bind_axis(const std::string& name, AxisReducer reducer);
/// Removes `name` (no-op when unbound).
void unbind_axis(const std::string& name);
/// Whether `name` is bound.
bool axis_bound(const std::string& name);
/// The names currently bound, sorted.
std::vector<std::string> bound_axes();

/// jax.lax.axis_size: the number of members of `axis_name`.   lax::axis_size("batch") == 4
std::int64_t axis_size(const std::string& axis_name);
/// jax.lax.psum: x summed over the members of `axis_name` (same shape and dtype).
///   loom::Array total = lax::psum(local_count, "batch");
Array psum(const Array& x, const std::string& axis_name);
/// jax.lax.pmean: psum(x) / axis_size (floating x; an integer x is promoted to float32, as
/// JAX's true division).   loom::Array mean = lax::pmean(local_mean, "batch");
Array pmean(const Array& x, const std::string& axis_name);

}  // namespace loom::lax
