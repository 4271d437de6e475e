// Reductions over an axis list, as jax.numpy: sum, mean, var, std, max, min, prod, argmax,
// argmin, logsumexp (numerically stable).
//
//   jnp::sum(x)                       // every axis -> scalar
//   jnp::mean(x, {0, 2}, /*keepdims=*/true)
//   jnp::argmax(x, 1)                 // int32 indices
//
// Negative axes count from the end; a repeated or out-of-range axis is a loom::Error.
// sum/prod of bool and integer arrays give int32 (uint32 stays uint32); mean/var of
// integers give float32.
#pragma once

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::numpy {

Array sum(const Array& x, Axes axes = {}, bool keepdims = false);
Array mean(const Array& x, Axes axes = {}, bool keepdims = false);
/// Variance with `ddof` delta degrees of freedom (0: population variance, as NumPy).
Array var(const Array& x, Axes axes = {}, bool keepdims = false, int ddof = 0);
Array std(const Array& x, Axes axes = {}, bool keepdims = false, int ddof = 0);
Array max(const Array& x, Axes axes = {}, bool keepdims = false);
Array min(const Array& x, Axes axes = {}, bool keepdims = false);
Array prod(const Array& x, Axes axes = {}, bool keepdims = false);
/// log(sum(exp(x))) computed as max + log(sum(exp(x - max))).
Array logsumexp(const Array& x, Axes axes = {}, bool keepdims = false);
/// Index of the first maximum along one axis (or of the flattened array when axis is nullopt).
Array argmax(const Array& x, std::optional<int> axis = std::nullopt, bool keepdims = false);
Array argmin(const Array& x, std::optional<int> axis = std::nullopt, bool keepdims = false);
Array any(const Array& x, Axes axes = {}, bool keepdims = false);
Array all(const Array& x, Axes axes = {}, bool keepdims = false);

}  // namespace loom::numpy
