// Private: the one tensor-contraction engine behind matmul, dot, einsum and lax.dot_general.
//
// A contraction is described by labels, einsum style: every axis of a, b and the result c
// carries an integer label; equal labels are the same index. A label in a and b but not c is
// summed; in all three it is a batch index; in one input and c it is a free index. Label -1
// marks an axis of size 1 that takes no part (a broadcast axis of matmul).
//
//   // matmul (m, k) @ (k, n): labels m=0, k=1, n=2
//   Array c = detail::contract(a, {0, 1}, b, {1, 2}, {0, 2}, Shape{m, n});
//
// The engine maps the labels onto strided batched GEMMs without copying operands whenever
// their memory layout allows it (transposes are passed to BLAS), and copies an operand into a
// GEMM-friendly order only when no stride pattern fits.
#pragma once

#include <cstdint>
#include <vector>

#include "loom/array.hpp"

namespace loom::detail {

/// The contraction without autodiff recording. a and b must share one dtype (callers promote).
Array contract_raw(const Array& a, const std::vector<int>& la, const Array& b,
                   const std::vector<int>& lb, const std::vector<int>& lc, const Shape& c_shape);

/// The differentiable contraction: records a VJP that is itself two contractions.
Array contract(const Array& a, const std::vector<int>& la, const Array& b,
               const std::vector<int>& lb, const std::vector<int>& lc, const Shape& c_shape);

/// Axis permutation (out axis i = x axis perm[i]) with its VJP; a strided copy.
Array permute(const Array& x, const std::vector<int>& perm);
Array permute_raw(const Array& x, const std::vector<int>& perm);

/// promote_types with the op's name in the error message.
DType promote_for(const char* op, const Array& a, const Array& b);

/// "(2, 3) float32": how error messages show an operand.
std::string describe(const Array& x);

}  // namespace loom::detail
