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
#include "numpy/reduce_kernels.hpp"

namespace loom::numpy {
using namespace reduce;  // NOLINT(google-build-using-namespace): the shared plan and kernels

namespace {

// The population variance pieces: mean (O*I) and sum of squared deviations (O*I).
struct Moments {
  Array mean, ssd;
};
Moments moments(const Array& src, const Plan& p) {
  Moments m;
  m.mean = reduce_with(ReduceOp::sum, false, src, p, Shape{p.O * p.I});
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
  m.ssd = reduce_with(ReduceOp::sum, false, dev, p, Shape{p.O * p.I});
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

}  // namespace

Array sum(const Array& x, Axes axes, bool keepdims) {
  detail::check_valid(x, "sum");
  const Plan p = make_plan(x.shape(), axes, "sum");
  Array out = reduce_with(ReduceOp::sum, /*widen_ints=*/true, to_layout(x, p), p,
                          keepdims ? p.keep_shape : p.out_shape);
  static constexpr detail::Primitive kSum{.name = "sum", .forward = detail::Forward::linear};
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
  Array out = reduce_with(ReduceOp::sum, false, floating(to_layout(x, p)), p,
                          keepdims ? p.keep_shape : p.out_shape);
  detail::dispatch_float(out.dtype(), "mean", [&]<typename T>() {
    T* o = out.mutable_data<T>();
    const T count = static_cast<T>(p.R);  // 0/0 = nan for an empty mean, as NumPy
    for (std::int64_t j = 0, n = out.size(); j < n; ++j) o[j] /= count;
  });
  static constexpr detail::Primitive kMean{.name = "mean", .forward = detail::Forward::linear};
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

Array prod(const Array& x, Axes axes, bool keepdims) {
  detail::check_valid(x, "prod");
  const Plan p = make_plan(x.shape(), axes, "prod");
  const Array src = to_layout(x, p);
  Array out = reduce_with(ReduceOp::prod, /*widen_ints=*/true, src, p,
                          keepdims ? p.keep_shape : p.out_shape);
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
  Array shift = reduce_with(ReduceOp::max, false, src, p, Shape{p.O * p.I});
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
  Array s = reduce_with(ReduceOp::sum, false, e, p, Shape{p.O * p.I});
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

}  // namespace loom::numpy
