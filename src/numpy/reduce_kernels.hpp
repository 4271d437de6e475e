// Private: the plan and kernels every reduction shares (src/numpy/reduce_kernels.cpp), used by
// reductions.cpp (sum, mean, var, std, prod, logsumexp) and reductions_minmax.cpp (max, min,
// argmax, argmin, any, all).
//
//
// Every reduction is first brought to one canonical layout, (O, R, I): O kept elements outside,
// R reduced elements, I kept elements inside, row-major. That is the input itself whenever the
// reduced axes (ignoring size-1 axes) are adjacent, which covers sum(x, -1), sum(x, 0) and
// every full reduction; otherwise the input is transposed once so that the kept axes come first
// and the reduced ones last (I = 1). Two kernels then do all the work:
//  - I == 1 (the reduced elements are contiguous): each output is a pairwise reduction of a
//    contiguous run, with 16 independent lanes at the leaves so that the compiler vectorizes it;
//  - I > 1: output rows are reduced across the R input rows, vectorized along i, in column
//    tiles that stay in L1, again pairwise over blocks of 16 rows.
// Pairwise summation keeps float32 sums accurate (error grows as O(log R) instead of O(R)).
// JAX on CPU also sums float32 in float32 (XLA uses a tree), so results agree to rounding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loom/array.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::numpy::reduce {

using In = std::vector<Array>;

struct Plan {
  Shape out_shape;                       // without the reduced axes
  Shape keep_shape;                      // the reduced axes kept with size 1
  std::optional<std::vector<int>> perm;  // set when the input must be transposed first
  std::int64_t O = 1, R = 1, I = 1;
};

// The (O, R, I) plan of reducing `axes` of shape s; an error naming `op` for bad axes.
Plan make_plan(const Shape& s, const Axes& axes, const char* op);
// Python text of axes ("None", "(1,)").
std::string axes_str(const Axes& axes);
// The input in (O, R, I) order (a transposed copy when the plan asks for one), detached.
Array to_layout(const Array& x, const Plan& p);
// An array in (O, R, I) layout (size O*R*I) back in x's axis order.
Array from_layout(Array d, const Plan& p, const Shape& x_shape);
// layout_with_history/from_layout_with_history: the same with history (differentiable).
Array layout_with_history(const Array& x, const Plan& p);
Array from_layout_with_history(const Array& d, const Plan& p, const Shape& x_shape);

enum class ReduceOp { sum, prod, max, min };
// Reduces `src` (in plan layout) into a new array of `shape`: pairwise, vectorized, parallel.
// widen_ints (sum, prod): bool and int32 accumulate in uint32 and return int32, wrapping as
// XLA's int32 does, without signed-overflow UB. max/min propagate NaN, as jnp.max.
Array reduce_with(ReduceOp op, bool widen_ints, const Array& src, const Plan& p,
                  const Shape& shape);
// The dtype sum and prod return: int32 for bool and int32, otherwise the input's.
DType sum_dtype(DType d);

// Calls f(x_index, stat_index) for every element of an (O, R, I) array, where stat_index is
// the element's (o, i) position in a reduced array.
template <typename F>
void for_ori(std::int64_t O, std::int64_t R, std::int64_t I, F&& f) {
  if (I == 1) {
    for (std::int64_t o = 0; o < O; ++o) {
      for (std::int64_t r = 0; r < R; ++r) f(o * R + r, o);
    }
    return;
  }
  for (std::int64_t o = 0; o < O; ++o) {
    for (std::int64_t r = 0; r < R; ++r) {
      const std::int64_t b = (o * R + r) * I, s = o * I;
      for (std::int64_t i = 0; i < I; ++i) f(b + i, s + i);
    }
  }
}

// x as float32 unless it is floating already.
Array floating(const Array& x);
// The uninitialized output of the plan, with or without the kept axes.
Array out_array(const Plan& p, bool keepdims, DType dtype);
// g (the reduction's output shape, with or without the kept axes) broadcast back to x's shape,
// divided by `divisor`; differentiable, so that VJPs built on it can be differentiated again.
Array broadcast_back(const Array& g, const Plan& p, const Shape& x_shape, double divisor);
// True when a VJP must be built of differentiable ops (see reduce_kernels.cpp).
bool higher_order();
// Throws for a reduction without identity over zero elements.
void check_nonempty(const Plan& p, const Array& x, const Axes& axes, const char* op);

}  // namespace loom::numpy::reduce
