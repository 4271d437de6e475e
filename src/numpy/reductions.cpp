// jax.numpy-style reductions (see loom/numpy/reductions.hpp).
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
#include "loom/numpy/reductions.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "detail/batching.hpp"
#include "detail/composite_vjp.hpp"
#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::numpy {
namespace {

// ---- axes and layout ------------------------------------------------------------------------

std::string axes_str(const Axes& axes) {
  if (!axes.axes) return "None";
  std::string s = "(";
  for (std::size_t i = 0; i < axes.axes->size(); ++i) {
    s += (i ? ", " : "") + std::to_string((*axes.axes)[i]);
  }
  return s + (axes.axes->size() == 1 ? ",)" : ")");
}

struct Plan {
  Shape out_shape;                       // without the reduced axes
  Shape keep_shape;                      // the reduced axes kept with size 1
  std::optional<std::vector<int>> perm;  // set when the input must be transposed first
  std::int64_t O = 1, R = 1, I = 1;
};

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
  static A combine(A a, A b) { return a * b; }
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

// The dtype sum and prod return: int32 for bool and int32, otherwise the input's.
DType sum_dtype(DType d) {
  return d == DType::bool_ ? DType::int32 : d;
}

// Reduces `src` (in plan layout) with Op into a new array of `shape`. Integer sums and products
// accumulate in uint32 (wrapping as XLA's int32 does, without signed-overflow UB).
template <template <class, class> class Op, bool kWidenInts = false>
Array reduce_with(const Array& src, const Plan& p, const Shape& shape) {
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

Array floating(const Array& x) {
  return is_floating(x.dtype()) ? x : x.astype(DType::float32);
}

Array out_array(const Plan& p, bool keepdims, DType dtype) {
  return Array::empty(keepdims ? p.keep_shape : p.out_shape, dtype);
}

using In = std::vector<Array>;

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

// The population variance pieces: mean (O*I) and sum of squared deviations (O*I).
struct Moments {
  Array mean, ssd;
};
Moments moments(const Array& src, const Plan& p) {
  Moments m;
  m.mean = reduce_with<SumOp>(src, p, Shape{p.O * p.I});
  Array dev = Array::empty(src.shape(), src.dtype());
  detail::dispatch_float(src.dtype(), "var", [&]<typename T>() {
    T* mp = m.mean.mutable_data<T>();
    const T count = static_cast<T>(p.R);
    for (std::int64_t j = 0; j < p.O * p.I; ++j) mp[j] /= count;
    const T* x = src.data<T>();
    T* d = dev.mutable_data<T>();
    for_ori(p.O, p.R, p.I, [&](std::int64_t xi, std::int64_t si) {
      const T c = x[xi] - mp[si];
      d[xi] = c * c;
    });
  });
  m.ssd = reduce_with<SumOp>(dev, p, Shape{p.O * p.I});
  return m;
}

Array var_impl(const Array& x, const Axes& axes, bool keepdims, int ddof, bool take_sqrt) {
  const char* op = take_sqrt ? "std" : "var";
  detail::check_valid(x, op);
  const Plan p = make_plan(x.shape(), axes, op);
  const Array src = floating(to_layout(x, p));
  Moments m = moments(src, p);
  // As jnp.var: nan when ddof >= the element count (jax gives where(n - ddof > 0, ., nan);
  // NumPy would give inf for a non-zero sum), and a nan gradient there too.
  const double divisor = static_cast<double>(p.R) - ddof;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Array out = out_array(p, keepdims, src.dtype());
  detail::dispatch_float(src.dtype(), op, [&]<typename T>() {
    const T* s = m.ssd.data<T>();
    T* o = out.mutable_data<T>();
    for (std::int64_t j = 0; j < p.O * p.I; ++j) {
      o[j] = divisor > 0 ? s[j] / static_cast<T>(divisor) : static_cast<T>(nan);
      if (take_sqrt) o[j] = std::sqrt(o[j]);
    }
  });
  static constexpr detail::Primitive kVar{.name = "var", .vjp_uses_output = true};
  static constexpr detail::Primitive kStd{.name = "std", .vjp_uses_output = true};
  if (detail::transforming())
    detail::bind(
        take_sqrt ? kStd : kVar, out, {&x},
        [axes, keepdims, ddof, take_sqrt](const In& in) {
          return var_impl(in[0], axes, keepdims, ddof, take_sqrt);
        },
        [x, axes, p, src, mean = m.mean, divisor, take_sqrt](const Array& g, const Array& res) {
          // d var / dx = 2 (x - mean) / divisor;  d std / dx = (x - mean) / (divisor * std).
          const double div = divisor > 0 ? divisor : std::numeric_limits<double>::quiet_NaN();
          if (higher_order()) {
            const Array xf = floating(x);
            const Array centered = subtract(xf, numpy::mean(xf, axes, true));
            const Array gb = broadcast_back(g, p, x.shape(), 1.0);
            if (take_sqrt) {
              const Array sb = broadcast_back(res, p, x.shape(), 1.0);
              return std::vector<Array>{divide(multiply(gb, centered), multiply(sb, div))};
            }
            return std::vector<Array>{divide(multiply(multiply(gb, 2.0), centered), div)};
          }
          Array dx = Array::empty(src.shape(), src.dtype());
          detail::dispatch_float(src.dtype(), "var", [&]<typename T>() {
            const T* xp = src.data<T>();
            const T* mp = mean.data<T>();
            const T* gp = g.data<T>();
            const T* rp = res.data<T>();
            T* d = dx.mutable_data<T>();
            const T dv = static_cast<T>(div);
            for_ori(p.O, p.R, p.I, [&](std::int64_t xi, std::int64_t si) {
              d[xi] = take_sqrt ? gp[si] * (xp[xi] - mp[si]) / (dv * rp[si])
                                : gp[si] * T(2) * (xp[xi] - mp[si]) / dv;
            });
          });
          return std::vector<Array>{from_layout(dx, p, x.shape())};
        },
        [axes, keepdims, ddof, take_sqrt](const In& in, const std::vector<bool>&) {
          return var_impl(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims, ddof,
                          take_sqrt);
        });
  return out;
}

// max and min, with JAX's VJP: the cotangent is split equally among the tied maxima
// (jax._src.lax.lax._reduce_chooser_jvp_rule: location indicators divided by their count).
template <template <class, class> class Op>
Array chooser(const Array& x, const Axes& axes, bool keepdims, const char* op) {
  detail::check_valid(x, op);
  const Plan p = make_plan(x.shape(), axes, op);
  check_nonempty(p, x, axes, op);
  const Array src = to_layout(x, p);
  Array out = reduce_with<Op>(src, p, keepdims ? p.keep_shape : p.out_shape);
  static constexpr detail::Primitive kMax{.name = "max", .vjp_uses_output = true};
  static constexpr detail::Primitive kMin{.name = "min", .vjp_uses_output = true};
  if (detail::transforming())
    detail::bind(
        std::string_view(op) == "max" ? kMax : kMin, out, {&x},
        [axes, keepdims, op](const In& in) { return chooser<Op>(in[0], axes, keepdims, op); },
        [x, axes, p, src](const Array& g, const Array& res) {
          if (higher_order()) {
            const Array rb = broadcast_back(res, p, x.shape(), 1.0);
            const Array mask = equal(x, rb).astype(g.dtype());
            const Array count = sum(mask, axes, true);
            return std::vector<Array>{
                divide(multiply(broadcast_back(g, p, x.shape(), 1.0), mask), count)};
          }
          Array dx = Array::empty(src.shape(), src.dtype());
          detail::dispatch_float(src.dtype(), "max", [&]<typename T>() {
            const T* xp = src.data<T>();
            const T* rp = res.data<T>();
            const T* gp = g.data<T>();
            T* d = dx.mutable_data<T>();
            std::vector<T> count(static_cast<std::size_t>(p.O * p.I), T(0));
            for_ori(p.O, p.R, p.I, [&](std::int64_t xi, std::int64_t si) {
              count[std::size_t(si)] += xp[xi] == rp[si] ? T(1) : T(0);
            });
            for_ori(p.O, p.R, p.I, [&](std::int64_t xi, std::int64_t si) {
              d[xi] = xp[xi] == rp[si] ? gp[si] / count[std::size_t(si)]
                                       : T(0) / count[std::size_t(si)];
            });
          });
          return std::vector<Array>{from_layout(dx, p, x.shape())};
        },
        [axes, keepdims, op](const In& in, const std::vector<bool>&) {
          return chooser<Op>(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims, op);
        });
  return out;
}

template <bool kMax>
Array arg_chooser(const Array& x, std::optional<int> axis, bool keepdims, const char* op) {
  detail::check_valid(x, op);
  const Array flat = axis ? x : x.reshaped_view(Shape{x.size()});
  const Plan p = make_plan(flat.shape(), axis ? Axes(*axis) : Axes(0), op);
  if (p.R == 0) {
    throw Error(std::string(op) + ": attempt to get " + op + " of an empty sequence (shape " +
                x.shape().str() + ")");
  }
  Shape shape = p.out_shape;
  if (keepdims) {
    if (axis) {
      shape = p.keep_shape;
    } else {
      shape = Shape();
      for (int d = 0; d < x.ndim(); ++d) shape.push_back(1);
    }
  }
  Array out = Array::empty(shape, DType::int32);
  std::int32_t* o = out.mutable_data<std::int32_t>();
  detail::dispatch(x.dtype(), [&]<typename T>() {
    const T* xp = flat.data<T>();
    // A NaN beats everything (the first NaN wins), as NumPy and JAX.
    auto better = [](T v, T best) {
      if constexpr (kMax)
        return v > best || (v != v && best == best);
      else
        return v < best || (v != v && best == best);
    };
    detail::parallel_for(
        p.O,
        [&](std::int64_t b, std::int64_t e) {
          std::vector<T> best(static_cast<std::size_t>(p.I));
          for (std::int64_t ob = b; ob < e; ++ob) {
            const T* base = xp + ob * p.R * p.I;
            std::int32_t* oi = o + ob * p.I;
            for (std::int64_t i = 0; i < p.I; ++i) {
              best[std::size_t(i)] = base[i];
              oi[i] = 0;
            }
            for (std::int64_t r = 1; r < p.R; ++r) {
              const T* row = base + r * p.I;
              for (std::int64_t i = 0; i < p.I; ++i) {
                if (better(row[i], best[std::size_t(i)])) {
                  best[std::size_t(i)] = row[i];
                  oi[i] = static_cast<std::int32_t>(r);
                }
              }
            }
          }
        },
        std::max<std::int64_t>(1, detail::kParallelGrain / std::max<std::int64_t>(p.R * p.I, 1)));
  });
  static constexpr detail::Primitive kArgmax{.name = "argmax"};
  static constexpr detail::Primitive kArgmin{.name = "argmin"};
  if (detail::transforming())
    detail::bind(
        kMax ? kArgmax : kArgmin, out, {&x},
        [axis, keepdims, op](const In& in) { return arg_chooser<kMax>(in[0], axis, keepdims, op); },
        nullptr,
        [axis, keepdims, op](const In& in, const std::vector<bool>&) {
          const Array& x = in[0];
          if (axis)
            return arg_chooser<kMax>(x, detail::shift_axis(*axis, x.ndim() - 1), keepdims, op);
          // No axis: over each example's flattened elements.
          const std::int64_t size = x.shape()[0];
          Array r = arg_chooser<kMax>(reshape(x, {size, -1}), 1, false, op);
          if (!keepdims) return r;
          std::vector<std::int64_t> s(std::size_t(x.ndim()), 1);
          s[0] = size;
          return reshape(r, s);
        });
  return out;
}

Array bool_reduce(const Array& x, const Axes& axes, bool keepdims, const char* op, bool is_any) {
  detail::check_valid(x, op);
  const Plan p = make_plan(x.shape(), axes, op);
  const Array src = to_layout(x.astype(DType::bool_), p);
  const Shape& shape = keepdims ? p.keep_shape : p.out_shape;
  Array out = is_any ? reduce_with<MaxOp>(src, p, shape) : reduce_with<MinOp>(src, p, shape);
  static constexpr detail::Primitive kAny{.name = "any"};
  static constexpr detail::Primitive kAll{.name = "all"};
  if (detail::transforming())
    detail::bind(
        is_any ? kAny : kAll, out, {&x},
        [axes, keepdims, op, is_any](const In& in) {
          return bool_reduce(in[0], axes, keepdims, op, is_any);
        },
        nullptr,
        [axes, keepdims, op, is_any](const In& in, const std::vector<bool>&) {
          return bool_reduce(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims, op,
                             is_any);
        });
  return out;
}

}  // namespace

Array sum(const Array& x, Axes axes, bool keepdims) {
  detail::check_valid(x, "sum");
  const Plan p = make_plan(x.shape(), axes, "sum");
  Array out = reduce_with<SumOp, true>(to_layout(x, p), p, keepdims ? p.keep_shape : p.out_shape);
  static constexpr detail::Primitive kSum{.name = "sum"};
  if (detail::transforming())
    detail::bind(
        kSum, out, {&x}, [axes, keepdims](const In& in) { return sum(in[0], axes, keepdims); },
        [p, x_shape = x.shape()](const Array& g, const Array&) {
          return std::vector<Array>{broadcast_back(g, p, x_shape, 1.0)};
        },
        [axes, keepdims](const In& in, const std::vector<bool>&) {
          return sum(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims);
        });
  return out;
}

Array mean(const Array& x, Axes axes, bool keepdims) {
  detail::check_valid(x, "mean");
  const Plan p = make_plan(x.shape(), axes, "mean");
  Array out =
      reduce_with<SumOp>(floating(to_layout(x, p)), p, keepdims ? p.keep_shape : p.out_shape);
  detail::dispatch_float(out.dtype(), "mean", [&]<typename T>() {
    T* o = out.mutable_data<T>();
    const T count = static_cast<T>(p.R);  // 0/0 = nan for an empty mean, as NumPy
    for (std::int64_t j = 0, n = out.size(); j < n; ++j) o[j] /= count;
  });
  static constexpr detail::Primitive kMean{.name = "mean"};
  if (detail::transforming())
    detail::bind(
        kMean, out, {&x}, [axes, keepdims](const In& in) { return mean(in[0], axes, keepdims); },
        [p, x_shape = x.shape()](const Array& g, const Array&) {
          return std::vector<Array>{broadcast_back(g, p, x_shape, static_cast<double>(p.R))};
        },
        [axes, keepdims](const In& in, const std::vector<bool>&) {
          return mean(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims);
        });
  return out;
}

Array var(const Array& x, Axes axes, bool keepdims, int ddof) {
  return var_impl(x, axes, keepdims, ddof, false);
}

Array std(const Array& x, Axes axes, bool keepdims, int ddof) {
  return var_impl(x, axes, keepdims, ddof, true);
}

Array max(const Array& x, Axes axes, bool keepdims) {
  return chooser<MaxOp>(x, axes, keepdims, "max");
}

Array min(const Array& x, Axes axes, bool keepdims) {
  return chooser<MinOp>(x, axes, keepdims, "min");
}

Array prod(const Array& x, Axes axes, bool keepdims) {
  detail::check_valid(x, "prod");
  const Plan p = make_plan(x.shape(), axes, "prod");
  const Array src = to_layout(x, p);
  Array out = reduce_with<ProdOp, true>(src, p, keepdims ? p.keep_shape : p.out_shape);
  static constexpr detail::Primitive kProd{.name = "prod"};
  if (detail::transforming())
    detail::bind(
        kProd, out, {&x}, [axes, keepdims](const In& in) { return prod(in[0], axes, keepdims); },
        [x, p, src](const Array& g, const Array&) {
          // d prod / dx_r = g * (product of the other elements): exact with zeros (no division
          // by x).
          if (higher_order()) {
            // The product of the others, for each r, from differentiable ops (O(R^2) work: only
            // when the backward pass itself is differentiated).
            const Array xl = layout_with_history(x, p);
            std::vector<Array> others;
            for (std::int64_t r = 0; r < p.R; ++r) {
              const Array rest = concatenate(
                  {slice(xl, {Slice{}, Slice{0, r, 1}}), slice(xl, {Slice{}, Slice{r + 1, {}, 1}})},
                  1);
              others.push_back(prod(rest, 1, true));
            }
            const Array gl = reshape(g, {p.O, 1, p.I});
            const Array dl = others.empty() ? zeros(Shape{p.O, p.R, p.I}, g.dtype())
                                            : multiply(gl, concatenate(others, 1));
            return std::vector<Array>{from_layout_with_history(dl, p, x.shape())};
          }
          Array dx = Array::empty(src.shape(), src.dtype());
          detail::dispatch_float(src.dtype(), "prod", [&]<typename T>() {
            const T* xp = src.data<T>();
            const T* gp = g.data<T>();
            T* d = dx.mutable_data<T>();
            std::vector<T> acc(static_cast<std::size_t>(p.I));
            for (std::int64_t o = 0; o < p.O; ++o) {
              const std::int64_t base = o * p.R * p.I;
              std::fill(acc.begin(), acc.end(), T(1));
              for (std::int64_t r = 0; r < p.R; ++r) {
                for (std::int64_t i = 0; i < p.I; ++i) {
                  const std::int64_t k = base + r * p.I + i;
                  d[k] = acc[std::size_t(i)];
                  acc[std::size_t(i)] *= xp[k];
                }
              }
              for (std::int64_t i = 0; i < p.I; ++i) acc[std::size_t(i)] = gp[o * p.I + i];
              for (std::int64_t r = p.R - 1; r >= 0; --r) {
                for (std::int64_t i = 0; i < p.I; ++i) {
                  const std::int64_t k = base + r * p.I + i;
                  d[k] *= acc[std::size_t(i)];
                  acc[std::size_t(i)] *= xp[k];
                }
              }
            }
          });
          return std::vector<Array>{from_layout(dx, p, x.shape())};
        },
        [axes, keepdims](const In& in, const std::vector<bool>&) {
          return prod(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims);
        });
  return out;
}

Array logsumexp(const Array& x, Axes axes, bool keepdims) {
  detail::check_valid(x, "logsumexp");
  const Plan p = make_plan(x.shape(), axes, "logsumexp");
  const Array src = floating(to_layout(x, p));
  // As jax.nn.logsumexp: shift by the max (by 0 where the max is not finite, so that rows of
  // -inf give -inf and rows with +inf give +inf), sum the exponentials pairwise, add back.
  Array shift = reduce_with<MaxOp>(src, p, Shape{p.O * p.I});
  Array e = Array::empty(src.shape(), src.dtype());
  detail::dispatch_float(src.dtype(), "logsumexp", [&]<typename T>() {
    T* m = shift.mutable_data<T>();
    for (std::int64_t j = 0; j < p.O * p.I; ++j) {
      if (!std::isfinite(m[j])) m[j] = T(0);
    }
    const T* xp = src.data<T>();
    T* ep = e.mutable_data<T>();
    for_ori(p.O, p.R, p.I,
            [&](std::int64_t xi, std::int64_t si) { ep[xi] = std::exp(xp[xi] - m[si]); });
  });
  Array s = reduce_with<SumOp>(e, p, Shape{p.O * p.I});
  Array out = out_array(p, keepdims, src.dtype());
  detail::dispatch_float(src.dtype(), "logsumexp", [&]<typename T>() {
    const T* sp = s.data<T>();
    const T* m = shift.data<T>();
    T* o = out.mutable_data<T>();
    for (std::int64_t j = 0; j < p.O * p.I; ++j) o[j] = std::log(sp[j]) + m[j];
  });
  static constexpr detail::Primitive kLogsumexp{.name = "logsumexp", .vjp_uses_output = true};
  if (detail::transforming())
    detail::bind(
        kLogsumexp, out, {&x},
        [axes, keepdims](const In& in) { return logsumexp(in[0], axes, keepdims); },
        [x, p, src](const Array& g, const Array& res) {
          // d lse / dx = softmax(x) = exp(x - lse).
          if (higher_order()) {
            const Array rb = broadcast_back(res, p, x.shape(), 1.0);
            return std::vector<Array>{
                multiply(broadcast_back(g, p, x.shape(), 1.0), exp(subtract(floating(x), rb)))};
          }
          Array dx = Array::empty(src.shape(), src.dtype());
          detail::dispatch_float(src.dtype(), "logsumexp", [&]<typename T>() {
            const T* xp = src.data<T>();
            const T* rp = res.data<T>();
            const T* gp = g.data<T>();
            T* d = dx.mutable_data<T>();
            for_ori(p.O, p.R, p.I, [&](std::int64_t xi, std::int64_t si) {
              d[xi] = gp[si] * std::exp(xp[xi] - rp[si]);
            });
          });
          return std::vector<Array>{from_layout(dx, p, x.shape())};
        },
        [axes, keepdims](const In& in, const std::vector<bool>&) {
          return logsumexp(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims);
        });
  return out;
}

Array argmax(const Array& x, std::optional<int> axis, bool keepdims) {
  return arg_chooser<true>(x, axis, keepdims, "argmax");
}

Array argmin(const Array& x, std::optional<int> axis, bool keepdims) {
  return arg_chooser<false>(x, axis, keepdims, "argmin");
}

Array any(const Array& x, Axes axes, bool keepdims) {
  return bool_reduce(x, axes, keepdims, "any", true);
}

Array all(const Array& x, Axes axes, bool keepdims) {
  return bool_reduce(x, axes, keepdims, "all", false);
}

}  // namespace loom::numpy
