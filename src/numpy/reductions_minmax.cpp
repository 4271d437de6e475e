// jax.numpy's max, min, argmax, argmin, any and all (see loom/numpy/reductions.hpp), on the
// shared plan and kernels of numpy/reduce_kernels.hpp.
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
#include "loom/numpy/reductions.hpp"
#include "numpy/reduce_kernels.hpp"

namespace loom::numpy {
using namespace reduce;  // NOLINT(google-build-using-namespace): the shared plan and kernels

namespace {

// max and min, with JAX's VJP: the cotangent is split equally among the tied maxima
// (jax._src.lax.lax._reduce_chooser_jvp_rule: location indicators divided by their count).
template <ReduceOp kOp>
Array chooser(const Array& x, const Axes& axes, bool keepdims, const char* op) {
  detail::check_valid(x, op);
  const Plan p = make_plan(x.shape(), axes, op);
  check_nonempty(p, x, axes, op);
  const Array src = to_layout(x, p);
  Array out = reduce_with(kOp, false, src, p, keepdims ? p.keep_shape : p.out_shape);
  static constexpr detail::Primitive kMax{.name = "max", .vjp_uses_output = true};
  static constexpr detail::Primitive kMin{.name = "min", .vjp_uses_output = true};
  if (detail::transforming())
    detail::bind(
        std::string_view(op) == "max" ? kMax : kMin, out, {&x},
        [axes, keepdims, op](const In& in) { return chooser<kOp>(in[0], axes, keepdims, op); },
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
          return chooser<kOp>(in[0], detail::shift_axes(axes, in[0].ndim() - 1), keepdims, op);
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
  Array out = is_any ? reduce_with(ReduceOp::max, false, src, p, shape)
                     : reduce_with(ReduceOp::min, false, src, p, shape);
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

Array max(const Array& x, Axes axes, bool keepdims) {
  return chooser<ReduceOp::max>(x, axes, keepdims, "max");
}

Array min(const Array& x, Axes axes, bool keepdims) {
  return chooser<ReduceOp::min>(x, axes, keepdims, "min");
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
