// Matrix products, as jax.numpy: matmul (batch-broadcasting), dot, einsum.
//
//   auto y = jnp::matmul(x, w);                         // (..., m, k) @ (..., k, n)
//   auto s = jnp::einsum("bqhd,bkhd->bhqk", {q, k});    // attention scores
//   auto t = jnp::einsum("ij->ji", {a});                // explicit transpose
//   auto v = jnp::einsum("...ij,jk", {x, w});           // implicit output "...ik"
//
// float32 and float64 go through OpenBLAS GEMM (transposed and strided operands are passed to
// BLAS as they lie in memory whenever the layout allows, instead of being copied); integer
// products are computed by loom's own loop and wrap around on overflow, as XLA's do; bool
// products give bool (numpy's "any(a and b)"). Mixed dtypes promote as loom/dtype.hpp says.
// All three are differentiable in both operands.
#pragma once

#include <string>
#include <vector>

#include "loom/array.hpp"

namespace loom::numpy {

/// numpy.matmul: a 1-D first operand is a row vector and a 1-D second operand a column vector
/// (the added axis is removed from the result); leading (batch) axes broadcast.
///   matmul(ones({8, 2, 3}), ones({3, 4})).shape() == Shape{8, 2, 4}
///   matmul(ones({3}), ones({3, 4})).shape() == Shape{4}
/// Inner dimensions that differ, unbroadcastable batch axes and 0-d operands are a loom::Error.
Array matmul(const Array& a, const Array& b);

/// numpy.dot: scalar times array when either is 0-d; otherwise a sum over a's last axis and b's
/// second-to-last (its only axis when 1-D); the result has a's other axes, then b's.
///   dot(ones({2, 3}), ones({4, 3, 5})).shape() == Shape{2, 4, 5}
Array dot(const Array& a, const Array& b);

/// numpy.einsum over any number of operands, contracted left to right, each pair as one GEMM.
/// Explicit ("ij,jk->ik") and implicit ("ij,jk": letters used once, in ASCII order) forms;
/// letters a-z and A-Z; "..." broadcasts as in numpy (size-1 axes stretch). A letter repeated
/// within one operand (a diagonal, "ii->i") is not supported and raises loom::Error, as do
/// unknown characters, operand-count and rank mismatches and letters of differing sizes.
///   einsum("bqhd,bkhd->bhqk", {q, k})   // (b, q, h, d), (b, k, h, d) -> (b, h, q, k)
///   einsum("ij->", {x})                 // sum of all elements
Array einsum(const std::string& subscripts, const std::vector<Array>& operands);

}  // namespace loom::numpy
