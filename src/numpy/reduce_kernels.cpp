// The reduction plan and kernels (see numpy/reduce_kernels.hpp for the layout).
#include "numpy/reduce_kernels.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "detail/batching.hpp"
#include "detail/composite_vjp.hpp"
#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::numpy::reduce {

std::string axes_str(const Axes& axes) {
  if (!axes.axes) return "None";
  std::string s = "(";
  for (std::size_t i = 0; i < axes.axes->size(); ++i) {
    s += (i ? ", " : "") + std::to_string((*axes.axes)[i]);
  }
  return s + (axes.axes->size() == 1 ? ",)" : ")");
}

Plan make_plan(const Shape& s, const Axes& axes, const char* op) {
  const int nd = s.size();
  std::vector<bool> red(std::size_t(nd), !axes.axes.has_value());
  if (axes.axes) {
    for (int a : *axes.axes) {
      if (a < -nd || a >= nd) {
        throw Error(std::string(op) + ": axis " + std::to_string(a) +
                    " is out of bounds for an array of rank " + std::to_string(nd) + " (shape " +
                    s.str() + ")");
      }
      const std::size_t k = std::size_t(a < 0 ? a + nd : a);
      if (red[k]) {
        throw Error(std::string(op) + ": repeated axis " + std::to_string(a) +
                    " in axis=" + axes_str(axes) + " (shape " + s.str() + ")");
      }
      red[k] = true;
    }
  }
  Plan p;
  for (int d = 0; d < nd; ++d) {
    if (red[std::size_t(d)]) {
      p.keep_shape.push_back(1);
    } else {
      p.out_shape.push_back(s[d]);
      p.keep_shape.push_back(s[d]);
    }
  }
  // Are the reduced axes adjacent once size-1 axes are ignored?
  int first = -1, last = -1;
  for (int d = 0; d < nd; ++d) {
    if (red[std::size_t(d)] && s[d] != 1) {
      if (first < 0) first = d;
      last = d;
    }
  }
  bool adjacent = true;
  for (int d = first + 1; first >= 0 && d < last; ++d) {
    if (!red[std::size_t(d)] && s[d] != 1) adjacent = false;
  }
  if (first < 0) {
    p.O = s.numel();
    return p;
  }
  if (adjacent) {
    for (int d = 0; d < first; ++d) p.O *= s[d];
    for (int d = first; d <= last; ++d) p.R *= s[d];
    for (int d = last + 1; d < nd; ++d) p.I *= s[d];
    return p;
  }
  std::vector<int> perm;
  for (int d = 0; d < nd; ++d) {
    if (!red[std::size_t(d)]) {
      perm.push_back(d);
      p.O *= s[d];
    }
  }
  for (int d = 0; d < nd; ++d) {
    if (red[std::size_t(d)]) {
      perm.push_back(d);
      p.R *= s[d];
    }
  }
  p.perm = std::move(perm);
  return p;
}

// The input in (O, R, I) order (a transposed copy when the plan asks for one).
Array to_layout(const Array& x, const Plan& p) {
  return p.perm ? transpose(x.detached(), *p.perm) : x.detached();
}

// An array in (O, R, I) layout (size O*R*I) back in x's axis order.
Array from_layout(Array d, const Plan& p, const Shape& x_shape) {
  if (!p.perm) return d.reshaped_view(x_shape);
  Shape t;
  for (int a : *p.perm) t.push_back(x_shape[a]);
  std::vector<int> inv(p.perm->size());
  for (std::size_t i = 0; i < inv.size(); ++i) inv[std::size_t((*p.perm)[i])] = int(i);
  return transpose(d.reshaped_view(t), inv);
}

Array floating(const Array& x) {
  return is_floating(x.dtype()) ? x : x.astype(DType::float32);
}

Array out_array(const Plan& p, bool keepdims, DType dtype) {
  return Array::empty(keepdims ? p.keep_shape : p.out_shape, dtype);
}

// g (the reduction's output shape, with or without the kept axes) broadcast back to x's shape,
// divided by `divisor`; differentiable, so that VJPs built on it can be differentiated again.
Array broadcast_back(const Array& g, const Plan& p, const Shape& x_shape, double divisor) {
  Array b = broadcast_to(reshape(g, p.keep_shape.to_vector()), x_shape);
  if (divisor == 1.0) return b;
  return divide(b, weak_scalar(divisor, b));  // T(divisor) division, as the kernel did
}

// A second-order VJP (a grad trace records the backward pass) is built of differentiable ops,
// and so is one a jit/vmap capture traces (the fused kernel below is not a primitive of its
// own, so a capture could not replay it); an eager first-order one runs the fused kernel.
bool higher_order() {
  return detail::use_composite_vjp();
}

// x in (O, R, I) layout with its history (to_layout detaches).
Array layout_with_history(const Array& x, const Plan& p) {
  const Array t = p.perm ? transpose(x, *p.perm) : x;
  return reshape(t, {p.O, p.R, p.I});
}

// The inverse of layout_with_history for an (O, R, I) array.
Array from_layout_with_history(const Array& d, const Plan& p, const Shape& x_shape) {
  if (!p.perm) return reshape(d, x_shape.to_vector());
  std::vector<std::int64_t> t;
  for (int a : *p.perm) t.push_back(x_shape[a]);
  std::vector<int> inv(p.perm->size());
  for (std::size_t i = 0; i < inv.size(); ++i) inv[std::size_t((*p.perm)[i])] = int(i);
  return transpose(reshape(d, t), inv);
}

void check_nonempty(const Plan& p, const Array& x, const Axes& axes, const char* op) {
  if (p.R == 0) {
    throw Error(std::string(op) + ": zero-size array to reduction operation " + op +
                " which has no identity (shape " + x.shape().str() + ", axis=" + axes_str(axes) +
                ")");
  }
}

namespace {

// ---- the reduction kernels -------------------------------------------------------------------

template <typename T, typename A>
struct SumOp {
  static A identity() { return A(0); }
  static A load(T v) { return static_cast<A>(v); }
  static A combine(A a, A b) { return a + b; }
};
template <typename T, typename A>
struct ProdOp {
  static A identity() { return A(1); }
  static A load(T v) { return static_cast<A>(v); }
  static A combine(A a, A b) {
    if constexpr (std::is_same_v<A, bool>) {
      return a && b;  // the product of booleans (jnp.prod): all
    } else {
      return a * b;
    }
  }
};
// max/min propagate NaN, as jnp.max; written as selects so that they vectorize.
template <typename T, typename A>
struct MaxOp {
  static A identity() {
    if constexpr (std::numeric_limits<A>::has_infinity)
      return -std::numeric_limits<A>::infinity();
    else
      return std::numeric_limits<A>::lowest();
  }
  static A load(T v) { return v; }
  static A combine(A a, A b) { return (b > a || b != b) ? b : a; }
};
template <typename T, typename A>
struct MinOp {
  static A identity() {
    if constexpr (std::numeric_limits<A>::has_infinity)
      return std::numeric_limits<A>::infinity();
    else
      return std::numeric_limits<A>::max();
  }
  static A load(T v) { return v; }
  static A combine(A a, A b) { return (b < a || b != b) ? b : a; }
};

constexpr int kLanes = 16;
constexpr std::int64_t kContigLeaf = 512;  // 16 lanes x 32 elements
constexpr std::int64_t kRowLeaf = 16;      // rows summed in sequence before pairing
constexpr std::int64_t kColTile = 512;     // output columns reduced together (stay in L1)
constexpr int kRParts = 8;                 // fixed split of R for parallel full reductions

// Reduction of n <= kContigLeaf contiguous elements in kLanes independent lanes (which the
// compiler turns into vector registers), combined as a tree at the end.
template <class Op, class T, class A>
inline A reduce_leaf(const T* p, std::int64_t n) {
  if (n < kLanes) {
    A r = Op::identity();
    for (std::int64_t i = 0; i < n; ++i) r = Op::combine(r, Op::load(p[i]));
    return r;
  }
  A acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = Op::load(p[j]);
  std::int64_t i = kLanes;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] = Op::combine(acc[j], Op::load(p[i + j]));
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] = Op::combine(acc[j], Op::load(p[i]));
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] = Op::combine(acc[j], acc[j + w]);
  }
  return acc[0];
}

// Pairwise reduction of n contiguous elements: leaves of kContigLeaf elements, merged as a
// binary tree with a binary-counter stack (leaf k merges with its neighbours for each
// trailing one bit of k), so without recursion.
template <class Op, class T, class A>
A reduce_contig(const T* p, std::int64_t n) {
  if (n <= kContigLeaf) return reduce_leaf<Op, T, A>(p, n);
  A stack[64];
  int top = 0;
  std::int64_t leaf = 0;
  for (std::int64_t i = 0; i < n; i += kContigLeaf, ++leaf) {
    A v = reduce_leaf<Op, T, A>(p + i, std::min(kContigLeaf, n - i));
    for (std::int64_t c = leaf; c & 1; c >>= 1) v = Op::combine(stack[--top], v);
    stack[top++] = v;
  }
  A r = stack[--top];
  while (top > 0) r = Op::combine(stack[--top], r);
  return r;
}

// out[0, w) = reduction over r < R <= kRowLeaf of p[r * ld + i]: kLanes columns at a time are
// kept in registers while the R rows stream past.
template <class Op, class T, class A>
inline void rows_leaf(const T* p, std::int64_t R, std::int64_t w, std::int64_t ld, A* out) {
  std::int64_t i = 0;
  for (; i + kLanes <= w; i += kLanes) {
    A acc[kLanes];
    for (int j = 0; j < kLanes; ++j) acc[j] = Op::load(p[i + j]);
    for (std::int64_t r = 1; r < R; ++r) {
      const T* row = p + r * ld + i;
      for (int j = 0; j < kLanes; ++j) acc[j] = Op::combine(acc[j], Op::load(row[j]));
    }
    for (int j = 0; j < kLanes; ++j) out[i + j] = acc[j];
  }
  for (; i < w; ++i) {
    A a = Op::load(p[i]);
    for (std::int64_t r = 1; r < R; ++r) a = Op::combine(a, Op::load(p[r * ld + i]));
    out[i] = a;
  }
}

// Rows of scratch that reduce_rows needs for R rows.
std::int64_t row_levels(std::int64_t R) {
  const auto leaves = static_cast<std::uint64_t>((R + kRowLeaf - 1) / kRowLeaf);
  return static_cast<std::int64_t>(std::bit_width(leaves)) + 2;
}

// out[0, w) = reduction over r < R of p[r * ld + i]: leaves of kRowLeaf rows merged pairwise
// through a binary-counter stack of partial rows in `scratch` (row_levels(R) rows of w).
template <class Op, class T, class A>
void reduce_rows(const T* p, std::int64_t R, std::int64_t w, std::int64_t ld, A* out, A* scratch) {
  if (R == 0) {
    for (std::int64_t i = 0; i < w; ++i) out[i] = Op::identity();
    return;
  }
  if (R <= kRowLeaf) {
    rows_leaf<Op, T, A>(p, R, w, ld, out);
    return;
  }
  std::int64_t top = 0, leaf = 0;
  for (std::int64_t r0 = 0; r0 < R; r0 += kRowLeaf, ++leaf) {
    A* v = scratch + top * w;
    rows_leaf<Op, T, A>(p + r0 * ld, std::min(kRowLeaf, R - r0), w, ld, v);
    for (std::int64_t c = leaf; c & 1; c >>= 1) {
      A* below = scratch + (top - 1) * w;
      for (std::int64_t i = 0; i < w; ++i) below[i] = Op::combine(below[i], v[i]);
      v = below;
      --top;
    }
    ++top;
  }
  std::copy(scratch + (top - 1) * w, scratch + top * w, out);
  for (std::int64_t k = top - 2; k >= 0; --k) {
    const A* left = scratch + k * w;
    for (std::int64_t i = 0; i < w; ++i) out[i] = Op::combine(left[i], out[i]);
  }
}

// Single-threaded reduction of x (o-range [o0, o1) of an (O, R, I) array) into out.
template <class Op, class T, class A>
void reduce_serial(const T* x, std::int64_t o0, std::int64_t o1, std::int64_t R, std::int64_t I,
                   A* out) {
  if (I == 1) {
    for (std::int64_t o = o0; o < o1; ++o) out[o] = reduce_contig<Op, T, A>(x + o * R, R);
    return;
  }
  auto scratch =
      std::make_unique<A[]>(static_cast<std::size_t>(std::min(I, kColTile) * row_levels(R)));
  for (std::int64_t o = o0; o < o1; ++o) {
    for (std::int64_t c = 0; c < I; c += kColTile) {
      const std::int64_t w = std::min(kColTile, I - c);
      reduce_rows<Op, T, A>(x + o * R * I + c, R, w, I, out + o * I + c, scratch.get());
    }
  }
}

template <class Op, class T, class A>
void reduce_ori(const T* x, std::int64_t O, std::int64_t R, std::int64_t I, A* out) {
  const std::int64_t work = O * R * I;
  if (work < 2 * detail::kParallelGrain) {
    reduce_serial<Op, T, A>(x, 0, O, R, I, out);
    return;
  }
  if (O == 1 && I <= kColTile && R >= kRParts) {
    // Few outputs, many inputs (a full sum, or (N, K) over axis 0 with small K): reduce a
    // fixed number of row ranges in parallel, then combine them pairwise. The split does not
    // depend on the thread count, so results are reproducible.
    auto part = std::make_unique<A[]>(static_cast<std::size_t>(kRParts * I));  // A may be bool
    detail::parallel_for(
        kRParts,
        [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t k = b; k < e; ++k) {
            const std::int64_t r0 = R * k / kRParts, r1 = R * (k + 1) / kRParts;
            reduce_serial<Op, T, A>(x + r0 * I, 0, 1, r1 - r0, I, part.get() + k * I);
          }
        },
        1);
    for (int wdt = kRParts / 2; wdt > 0; wdt /= 2) {
      for (int k = 0; k < wdt; ++k) {
        A* a = part.get() + k * I;
        const A* b = part.get() + (k + wdt) * I;
        for (std::int64_t i = 0; i < I; ++i) a[i] = Op::combine(a[i], b[i]);
      }
    }
    std::copy(part.get(), part.get() + I, out);
    return;
  }
  if (I == 1 || O > 1) {
    detail::parallel_for(
        O, [&](std::int64_t b, std::int64_t e) { reduce_serial<Op, T, A>(x, b, e, R, I, out); },
        std::max<std::int64_t>(1, detail::kParallelGrain / std::max<std::int64_t>(R * I, 1)));
    return;
  }
  // O == 1 with wide rows: split the columns.
  const std::int64_t tiles = (I + kColTile - 1) / kColTile;
  detail::parallel_for(
      tiles,
      [&](std::int64_t b, std::int64_t e) {
        auto scratch = std::make_unique<A[]>(static_cast<std::size_t>(kColTile * row_levels(R)));
        for (std::int64_t t = b; t < e; ++t) {
          const std::int64_t c = t * kColTile, w = std::min(kColTile, I - c);
          reduce_rows<Op, T, A>(x + c, R, w, I, out + c, scratch.get());
        }
      },
      std::max<std::int64_t>(1, detail::kParallelGrain / std::max<std::int64_t>(R * kColTile, 1)));
}

// Reduces `src` (in plan layout) with Op into a new array of `shape`. Integer sums and products
// accumulate in uint32 (wrapping as XLA's int32 does, without signed-overflow UB).
template <template <class, class> class Op, bool kWidenInts>
Array reduce_with_t(const Array& src, const Plan& p, const Shape& shape) {
  DType out_dtype = kWidenInts ? sum_dtype(src.dtype()) : src.dtype();
  Array out = Array::empty(shape, out_dtype);
  detail::dispatch(src.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>) {
      reduce_ori<Op<T, T>, T, T>(src.data<T>(), p.O, p.R, p.I, out.mutable_data<T>());
    } else if constexpr (kWidenInts) {
      using A = std::uint32_t;
      reduce_ori<Op<T, A>, T, A>(src.data<T>(), p.O, p.R, p.I,
                                 static_cast<A*>(out.raw_mutable_data()));
    } else {
      reduce_ori<Op<T, T>, T, T>(src.data<T>(), p.O, p.R, p.I, out.mutable_data<T>());
    }
  });
  return out;
}

}  // namespace

Array reduce_with(ReduceOp op, bool widen_ints, const Array& src, const Plan& p,
                  const Shape& shape) {
  switch (op) {
    case ReduceOp::sum:
      return widen_ints ? reduce_with_t<SumOp, true>(src, p, shape)
                        : reduce_with_t<SumOp, false>(src, p, shape);
    case ReduceOp::prod:
      return widen_ints ? reduce_with_t<ProdOp, true>(src, p, shape)
                        : reduce_with_t<ProdOp, false>(src, p, shape);
    case ReduceOp::max:
      return reduce_with_t<MaxOp, false>(src, p, shape);
    case ReduceOp::min:
      return reduce_with_t<MinOp, false>(src, p, shape);
  }
  throw Error("internal: unknown reduction");
}

DType sum_dtype(DType d) {
  return d == DType::bool_ ? DType::int32 : d;
}

}  // namespace loom::numpy::reduce
