// Matrix products, as jax.numpy: matmul (batch-broadcasting), dot, einsum.
//
//   auto y = jnp::matmul(x, w);                         // (..., m, k) @ (..., k, n)
//   auto s = jnp::einsum("bqhd,bkhd->bhqk", {q, k});    // attention scores
// float32 and float64 go through OpenBLAS; integer matmul is computed by loom's own loop.
#pragma once

#include <string>
#include <vector>

#include "loom/array.hpp"

namespace loom::numpy {

/// numpy.matmul: 1-D operands are promoted (and the added axis removed), leading axes broadcast.
Array matmul(const Array& a, const Array& b);
/// numpy.dot for 1-D and 2-D operands (and N-D @ 1-D/2-D as numpy.dot defines it).
Array dot(const Array& a, const Array& b);
/// Explicit einsum ("ij,jk->ik"); every subscript letter is one axis; no ellipsis yet.
Array einsum(const std::string& subscripts, const std::vector<Array>& operands);

}  // namespace loom::numpy
