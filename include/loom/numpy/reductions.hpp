// Reductions over an axis list, as jax.numpy: sum, mean, var, std, max, min, prod, logsumexp,
// argmax, argmin, any, all.
//
//   jnp::sum(x)                              // every axis -> scalar
//   jnp::mean(x, {0, 2}, /*keepdims=*/true)  // shape (1, d1, 1)
//   jnp::argmax(x, 1)                        // int32 indices
//
// Axes: none means every axis; negative axes count from the end; an empty list reduces
// nothing; a repeated or out-of-range axis is a loom::Error naming the op and the shape.
// Dtypes: sum/prod of bool and int32 give int32 (uint32 stays uint32; integer sums wrap
// around as XLA's do); mean/var/std/logsumexp of bool and integers compute in float32.
// Empty reductions follow NumPy: sum -> 0, prod -> 1, mean/var -> nan, logsumexp -> -inf,
// any -> false, all -> true; max/min/argmax/argmin of an empty axis are a loom::Error.
// NaN propagates through max/min (and argmax/argmin return the first NaN), as in JAX.
// Accuracy: float sums accumulate in the input dtype, pairwise (16-lane leaves of 512
// elements, or of 16 rows, merged as a binary tree), so the error grows as O(log n), like
// NumPy's pairwise sum and XLA's tree reduction; var is two-pass (mean, then squared
// deviations), so a large offset does not cancel a small variance.
// Gradients: every floating reduction is differentiable (argmax/argmin/any/all are not).
#pragma once

#include <optional>

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::numpy {

/// Sum over `axes`.  jnp::sum(Array({{1, 2}, {3, 4}}), 0) -> [4, 6] (int32)
Array sum(const Array& x, Axes axes = {}, bool keepdims = false);

/// Arithmetic mean.  jnp::mean(Array({1, 2})) -> 1.5 (float32)
Array mean(const Array& x, Axes axes = {}, bool keepdims = false);

/// Variance with `ddof` delta degrees of freedom (0: population variance, as NumPy); nan where
/// ddof >= the number of elements (as jnp.var).  jnp::var(x, 1, false, /*ddof=*/1)
Array var(const Array& x, Axes axes = {}, bool keepdims = false, int ddof = 0);

/// sqrt(var(x, ...)).  jnp::std(x, {}, false, 1) is the sample standard deviation.
Array std(const Array& x, Axes axes = {}, bool keepdims = false, int ddof = 0);

/// Maximum. The gradient is split equally among tied maxima, as JAX's
/// (_reduce_chooser_jvp_rule: location indicators divided by their count).
///   jnp::max(Array({{1.f, 5.f}, {7.f, 2.f}}), -1) -> [5, 7]
Array max(const Array& x, Axes axes = {}, bool keepdims = false);

/// Minimum; gradient as max.  jnp::min(x) -> scalar
Array min(const Array& x, Axes axes = {}, bool keepdims = false);

/// Product. The gradient is the product of the other elements, computed from exclusive
/// prefix and suffix products, so it is exact when x holds zeros (no division by x).
///   jnp::prod(Array({2.f, 3.f, 4.f})) -> 24
Array prod(const Array& x, Axes axes = {}, bool keepdims = false);

/// log(sum(exp(x))) computed stably as m + log(sum(exp(x - m))) with m the max, taken as 0
/// where the max is not finite (as jax.nn.logsumexp: rows of -inf give -inf, rows holding
/// +inf give +inf). Gradient: softmax, exp(x - logsumexp(x)).
///   jnp::logsumexp(logits, -1, /*keepdims=*/true)
Array logsumexp(const Array& x, Axes axes = {}, bool keepdims = false);

/// Index (int32) of the first maximum along one axis, or into the flattened array when axis
/// is nullopt (keepdims then keeps every axis with size 1).  jnp::argmax(logits, -1)
Array argmax(const Array& x, std::optional<int> axis = std::nullopt, bool keepdims = false);
/// Index (int32) of the first minimum.  jnp::argmin(x)
Array argmin(const Array& x, std::optional<int> axis = std::nullopt, bool keepdims = false);

/// Whether any element is non-zero (NaN counts as non-zero); bool.  jnp::any(x > 0.0)
Array any(const Array& x, Axes axes = {}, bool keepdims = false);
/// Whether every element is non-zero; bool.  jnp::all(jnp::isfinite(x))
Array all(const Array& x, Axes axes = {}, bool keepdims = false);

}  // namespace loom::numpy
