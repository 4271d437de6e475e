// jax.nn's functions along axes (softmax, log_softmax, standardize, glu, one_hot, logsumexp)
// and flax.linen.PReLU. The reduced axes are laid out as (outer, n, inner): adjacent axes are
// merged in place, others moved last with one transpose; each group is one fused pass.
#include <algorithm>
#include <string>
#include <vector>

#include "detail/batching.hpp"
#include "loom/nn/activation.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"
#include "nn/activation_kernels.hpp"

namespace loom::nn {
using namespace kernels;  // NOLINT: the block kernels of this file
namespace {

// ---- reductions along axes: the (outer, n, inner) layout ----------------------------------

struct Layout {
  std::int64_t outer = 1, n = 1, inner = 1;
};

// Normalized, sorted, duplicate-free axes of `axes` for x (every axis when unset).
std::vector<int> normalize_axes(const Array& x, const numpy::Axes& axes, const char* op) {
  std::vector<int> out;
  const int r = x.ndim();
  if (!axes.axes.has_value()) {
    for (int i = 0; i < r; ++i) out.push_back(i);
    return out;
  }
  for (int a : *axes.axes) {
    const int b = a < 0 ? a + r : a;
    if (b < 0 || b >= r) {
      throw Error(std::string(op) + ": axis " + std::to_string(a) +
                  " is out of range for an array of shape " + x.shape().str() + " (expected -" +
                  std::to_string(r) + " <= axis < " + std::to_string(r) + ")" +
                  detail::module_path_suffix());
    }
    if (std::find(out.begin(), out.end(), b) != out.end()) {
      throw Error(std::string(op) + ": axis " + std::to_string(a) + " is repeated for shape " +
                  x.shape().str() + detail::module_path_suffix());
    }
    out.push_back(b);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Calls f(x', layout) with the reduced axes contiguous in x' (moving them last when they are
// not adjacent) and returns the result in x's axis order.
template <typename F>
Array along_axes(const Array& x, const numpy::Axes& axes, const char* op, F f) {
  loom::detail::check_valid(x, op);
  const std::vector<int> ax = normalize_axes(x, axes, op);
  const Shape& s = x.shape();
  Layout l;
  if (ax.empty()) {  // nothing reduced: every element is its own group
    l.outer = s.numel();
    return f(x, l, ax);
  }
  const bool adjacent = ax.back() - ax.front() + 1 == int(ax.size());
  if (adjacent) {
    for (int i = 0; i < s.size(); ++i) {
      (i < ax.front() ? l.outer : i <= ax.back() ? l.n : l.inner) *= s[i];
    }
    return f(x, l, ax);
  }
  std::vector<int> perm;
  for (int i = 0; i < s.size(); ++i) {
    if (std::find(ax.begin(), ax.end(), i) == ax.end()) {
      perm.push_back(i);
      l.outer *= s[i];
    }
  }
  for (int a : ax) {
    perm.push_back(a);
    l.n *= s[a];
  }
  std::vector<int> inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[std::size_t(perm[i])] = int(i);
  std::vector<int> moved;  // the reduced axes of the transposed array: its last ones
  for (int i = s.size() - int(ax.size()); i < s.size(); ++i) moved.push_back(i);
  return numpy::transpose(f(numpy::transpose(x, perm), l, moved), inverse);
}

// Flat-row reductions (inner == 1) with 8 independent accumulators, so that the loops
// vectorize without reassociating floating-point math behind the compiler's back.
template <typename T, typename F>
T flat_reduce(const T* x, const T* y, std::int64_t n, T init, F f) {
  T acc[8] = {init, init, init, init, init, init, init, init};
  std::int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    for (int j = 0; j < 8; ++j) acc[j] = f(acc[j], x[k + j], y[k + j]);
  }
  for (; k < n; ++k) acc[0] = f(acc[0], x[k], y[k]);
  T r = acc[0];
  for (int j = 1; j < 8; ++j) r = f(r, acc[j], T(1));
  return r;
}

template <typename T>
void group_max(const T* x, const Layout& l, T* m) {
  if (l.inner == 1) {
    m[0] = flat_reduce(x, x, l.n, -std::numeric_limits<T>::infinity(),
                       [](T a, T v, T) { return v > a ? v : a; });
    return;
  }
  std::fill(m, m + l.inner, -std::numeric_limits<T>::infinity());
  for (std::int64_t k = 0; k < l.n; ++k) {
    const T* row = x + k * l.inner;
    for (std::int64_t i = 0; i < l.inner; ++i) m[i] = row[i] > m[i] ? row[i] : m[i];
  }
}

template <typename T>
void group_sum(const T* x, const Layout& l, T* s) {
  if (l.inner == 1) {
    s[0] = flat_reduce(x, x, l.n, T(0), [](T a, T v, T) { return a + v; });
    return;
  }
  std::fill(s, s + l.inner, T(0));
  for (std::int64_t k = 0; k < l.n; ++k) {
    const T* row = x + k * l.inner;
    for (std::int64_t i = 0; i < l.inner; ++i) s[i] += row[i];
  }
}

// sum over k of a[k, i] * b[k, i].
template <typename T>
void group_dot(const T* a, const T* b, const Layout& l, T* s) {
  if (l.inner == 1) {  // the final combine passes v = acc[j], w = 1
    s[0] = flat_reduce(a, b, l.n, T(0), [](T acc, T v, T w) { return acc + v * w; });
    return;
  }
  std::fill(s, s + l.inner, T(0));
  for (std::int64_t k = 0; k < l.n; ++k) {
    for (std::int64_t i = 0; i < l.inner; ++i) s[i] += a[k * l.inner + i] * b[k * l.inner + i];
  }
}

// Runs per_group(o, scratch) for every outer group o, in parallel over groups; scratch holds
// `scratch_size` values of T, allocated once per thread.
template <typename T, typename F>
void for_groups(const Layout& l, std::int64_t scratch_size, F&& per_group) {
  const std::int64_t group = std::max<std::int64_t>(1, l.n * l.inner);
  loom::detail::parallel_for(
      l.outer,
      [&](std::int64_t b, std::int64_t e) {
        std::vector<T> scratch(std::size_t(std::max<std::int64_t>(scratch_size, 1)));
        for (std::int64_t o = b; o < e; ++o) per_group(o, scratch.data());
      },
      std::max<std::int64_t>(1, loom::detail::kParallelGrain / group));
}

// Calls f(j, i) for every element j = k * inner + i of a group (i: its inner index); one flat
// loop, which the compiler vectorizes, when inner == 1.
template <typename F>
void each(const Layout& l, F&& f) {
  if (l.inner == 1) {
    for (std::int64_t j = 0; j < l.n; ++j) f(j, std::int64_t{0});
    return;
  }
  for (std::int64_t k = 0; k < l.n; ++k) {
    for (std::int64_t i = 0; i < l.inner; ++i) f(k * l.inner + i, i);
  }
}

template <typename T>
void exp_inplace(T* y, std::int64_t n) {
  for (std::int64_t s = 0; s < n; s += kBlock) vexp(y + s, y + s, std::min(kBlock, n - s));
}

Array as_float(const Array& x) {
  return is_floating(x.dtype()) ? x : x.astype(DType::float32);
}

}  // namespace

// ---- gated and normalizing functions -------------------------------------------------------

Array glu(const Array& x0, int axis) {
  loom::detail::check_valid(x0, "glu");
  const Array x = as_float(x0);
  const std::vector<int> ax = normalize_axes(x, numpy::Axes(axis), "glu");
  const int a = ax[0];
  const std::int64_t size = x.shape()[a];
  if (size % 2 != 0) {
    throw Error("glu: the size of axis " + std::to_string(axis) +
                " must be even to split in two, " + "got " + describe(x0) +
                detail::module_path_suffix());
  }
  Layout l;
  for (int i = 0; i < x.ndim(); ++i) (i < a ? l.outer : i == a ? l.n : l.inner) *= x.shape()[i];
  Shape out_shape = x.shape();
  out_shape[a] = size / 2;
  const std::int64_t half = (size / 2) * l.inner;  // a group: [a half | b half], each contiguous
  Array out = Array::empty(out_shape, x.dtype());
  loom::detail::dispatch_float(x.dtype(), "glu", [&]<typename T>() {
    const T* px = x.data<T>();
    T* py = out.mutable_data<T>();
    for_groups<T>(l, 0, [&](std::int64_t o, T*) {
      const T* pa = px + o * 2 * half;
      const T* pb = pa + half;
      T* y = py + o * half;
      for (std::int64_t s = 0; s < half; s += kBlock) {
        const std::int64_t len = std::min(kBlock, half - s);
        vsigmoid(pb + s, y + s, len);
        for (std::int64_t i = 0; i < len; ++i) y[s + i] *= pa[s + i];
      }
    });
  });
  if (!loom::detail::transforming()) return out;
  static constexpr loom::detail::Primitive kGlu{.name = "glu"};
  loom::detail::bind(
      kGlu, out, {&x}, [a](const std::vector<Array>& in) { return glu(in[0], a); },
      [x, l, half, a](const Array& g0, const Array&) {
        const Array g = g0.dtype() == x.dtype() ? g0 : g0.astype(x.dtype());
        if (loom::detail::use_composite_vjp()) {  // differentiable: glu(x) = x1 * sigmoid(x2)
          std::vector<numpy::Slice> first(std::size_t(x.ndim())), second(first);
          first[std::size_t(a)].stop = x.shape()[a] / 2;
          second[std::size_t(a)].start = x.shape()[a] / 2;
          const Array x1 = numpy::slice(x, first), sg = sigmoid(numpy::slice(x, second));
          return std::vector<Array>{numpy::concatenate({g * sg, g * x1 * sg * (1.0 - sg)}, a)};
        }
        Array dx = Array::empty(x.shape(), x.dtype());
        loom::detail::dispatch_float(x.dtype(), "glu", [&]<typename T>() {
          const T* px = x.data<T>();
          const T* pg = g.data<T>();
          T* pd = dx.mutable_data<T>();
          for_groups<T>(l, 0, [&](std::int64_t o, T*) {
            const T* pa = px + o * 2 * half;
            const T* pb = pa + half;
            const T* gg = pg + o * half;
            T* da = pd + o * 2 * half;
            T* db = da + half;
            T sg[kBlock];
            for (std::int64_t s = 0; s < half; s += kBlock) {
              const std::int64_t len = std::min(kBlock, half - s);
              vsigmoid(pb + s, sg, len);
              for (std::int64_t i = 0; i < len; ++i) {
                da[s + i] = gg[s + i] * sg[i];
                db[s + i] = gg[s + i] * pa[s + i] * sg[i] * (T(1) - sg[i]);
              }
            }
          });
        });
        return std::vector<Array>{dx};
      },
      [a](const std::vector<Array>& in, const std::vector<bool>&) { return glu(in[0], a + 1); });
  return out;
}

namespace {

// softmax (is_log = false) or log_softmax (is_log = true) along the layout's middle axis.
Array softmax_impl(const Array& x0, const numpy::Axes& axes, bool is_log, const char* op) {
  return along_axes(
      as_float(x0), axes, op, [&](const Array& x, const Layout& l, const std::vector<int>& ax) {
        Array out = Array::empty(x.shape(), x.dtype());
        loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
          const T* px = x.data<T>();
          T* py = out.mutable_data<T>();
          const std::int64_t group = l.n * l.inner;
          for_groups<T>(l, 2 * l.inner, [&](std::int64_t o, T* scratch) {
            const T* xg = px + o * group;
            T* yg = py + o * group;
            T* m = scratch;
            T* s = scratch + l.inner;
            group_max(xg, l, m);
            each(l, [&](std::int64_t j, std::int64_t i) { yg[j] = xg[j] - m[i]; });
            exp_inplace(yg, group);
            group_sum(yg, l, s);
            if (is_log) {  // y = (x - max) - log(sum(exp(x - max)))
              vlog(s, s, l.inner);
              each(l, [&](std::int64_t j, std::int64_t i) { yg[j] = (xg[j] - m[i]) - s[i]; });
            } else {
              // a true division, as jax.nn.softmax's unnormalized / sum (not times a reciprocal)
              each(l, [&](std::int64_t j, std::int64_t i) { yg[j] /= s[i]; });
            }
          });
        });
        if (!loom::detail::transforming()) return out;
        // softmax's Jacobian diag(y) - y y^T is symmetric; log_softmax's I - 1 y^T is not.
        static constexpr loom::detail::Primitive kSoftmax{
            .name = "softmax",
            .vjp_uses_output = true,
            .forward = loom::detail::Forward::symmetric};
        static constexpr loom::detail::Primitive kLogSoftmax{.name = "log_softmax",
                                                             .vjp_uses_output = true};
        loom::detail::bind(
            is_log ? kLogSoftmax : kSoftmax, out, {&x},
            [ax, is_log, op](const std::vector<Array>& in) {
              return softmax_impl(in[0], numpy::Axes(ax), is_log, op);
            },
            [l, ax, is_log, op](const Array& g0, const Array& y) {
              const Array g = g0.dtype() == y.dtype() ? g0 : g0.astype(y.dtype());
              if (loom::detail::use_composite_vjp()) {  // the same formulas in differentiable ops
                if (is_log) return std::vector<Array>{g - numpy::exp(y) * numpy::sum(g, ax, true)};
                return std::vector<Array>{y * (g - numpy::sum(g * y, ax, true))};
              }
              Array dx = Array::empty(y.shape(), y.dtype());
              loom::detail::dispatch_float(y.dtype(), op, [&]<typename T>() {
                const T* py = y.data<T>();
                const T* pg = g.data<T>();
                T* pd = dx.mutable_data<T>();
                const std::int64_t group = l.n * l.inner;
                for_groups<T>(l, l.inner, [&](std::int64_t o, T* s) {
                  const T* yg = py + o * group;
                  const T* gg = pg + o * group;
                  T* dg = pd + o * group;
                  if (is_log) {  // dx = g - softmax * sum(g), softmax = exp(y)
                    group_sum(gg, l, s);
                    std::copy(yg, yg + group, dg);
                    exp_inplace(dg, group);
                    each(l, [&](std::int64_t j, std::int64_t i) { dg[j] = gg[j] - dg[j] * s[i]; });
                  } else {  // dx = y * (g - sum(g * y))
                    group_dot(gg, yg, l, s);
                    each(l,
                         [&](std::int64_t j, std::int64_t i) { dg[j] = yg[j] * (gg[j] - s[i]); });
                  }
                });
              });
              return std::vector<Array>{dx};
            },
            [ax, is_log, op](const std::vector<Array>& in, const std::vector<bool>&) {
              return softmax_impl(
                  in[0], loom::detail::shift_axes(numpy::Axes(ax), in[0].ndim() - 1), is_log, op);
            });
        return out;
      });
}

}  // namespace

Array softmax(const Array& x, numpy::Axes axis) {
  return softmax_impl(x, axis, false, "softmax");
}

Array log_softmax(const Array& x, numpy::Axes axis) {
  return softmax_impl(x, axis, true, "log_softmax");
}

Array logsumexp(const Array& x, numpy::Axes axis, bool keepdims) {
  return numpy::logsumexp(x, std::move(axis), keepdims);
}

Array standardize(const Array& x0, numpy::Axes axes, double epsilon) {
  return along_axes(
      as_float(x0), axes, "standardize",
      [&](const Array& x, const Layout& l, const std::vector<int>& ax) {
        Array out = Array::empty(x.shape(), x.dtype());
        loom::detail::dispatch_float(x.dtype(), "standardize", [&]<typename T>() {
          const T* px = x.data<T>();
          T* py = out.mutable_data<T>();
          const std::int64_t group = l.n * l.inner;
          for_groups<T>(l, 2 * l.inner, [&](std::int64_t o, T* scratch) {
            const T* xg = px + o * group;
            T* yg = py + o * group;
            T* m = scratch;
            T* r = scratch + l.inner;
            group_sum(xg, l, m);
            group_dot(xg, xg, l, r);
            for (std::int64_t i = 0; i < l.inner; ++i) {
              m[i] /= T(l.n);  // means as jnp.mean: sum / n
              // As jax.nn.standardize: variance = mean(x^2) - mean(x)^2, then rsqrt(var + eps).
              r[i] = T(1) / std::sqrt(r[i] / T(l.n) - m[i] * m[i] + T(epsilon));
            }
            each(l, [&](std::int64_t j, std::int64_t i) { yg[j] = (xg[j] - m[i]) * r[i]; });
          });
        });
        if (!loom::detail::transforming()) return out;
        // Jacobian r (I - 1 1^T / n - y y^T / n): symmetric.
        static constexpr loom::detail::Primitive kStandardize{
            .name = "standardize",
            .vjp_uses_output = true,
            .forward = loom::detail::Forward::symmetric};
        loom::detail::bind(
            kStandardize, out, {&x},
            [ax, epsilon](const std::vector<Array>& in) {
              return standardize(in[0], numpy::Axes(ax), epsilon);
            },
            [x, l, ax, epsilon](const Array& g0, const Array& y) {
              const Array g = g0.dtype() == y.dtype() ? g0 : g0.astype(y.dtype());
              if (loom::detail::use_composite_vjp()) {  // differentiable, as the kernel below
                const Array m = numpy::mean(x, ax, true);
                const Array r = numpy::rsqrt(numpy::mean(x * x, ax, true) - m * m + epsilon);
                return std::vector<Array>{
                    r * (g - numpy::mean(g, ax, true) - y * numpy::mean(g * y, ax, true))};
              }
              Array dx = Array::empty(y.shape(), y.dtype());
              loom::detail::dispatch_float(y.dtype(), "standardize", [&]<typename T>() {
                const T* px = x.data<T>();
                const T* py = y.data<T>();
                const T* pg = g.data<T>();
                T* pd = dx.mutable_data<T>();
                const std::int64_t group = l.n * l.inner;
                const T inv_n = T(1) / T(l.n);
                for_groups<T>(l, 4 * l.inner, [&](std::int64_t o, T* scratch) {
                  const T* xg = px + o * group;
                  const T* yg = py + o * group;
                  const T* gg = pg + o * group;
                  T* dg = pd + o * group;
                  // dx = r (g - mean(g) - y mean(g y)), with r = rsqrt(var + eps) recomputed from
                  // x.
                  T* m = scratch;
                  T* r = scratch + l.inner;
                  T* sg = scratch + 2 * l.inner;
                  T* sgy = scratch + 3 * l.inner;
                  group_sum(xg, l, m);
                  group_dot(xg, xg, l, r);
                  group_sum(gg, l, sg);
                  group_dot(gg, yg, l, sgy);
                  for (std::int64_t i = 0; i < l.inner; ++i) {
                    m[i] /= T(l.n);
                    r[i] = T(1) / std::sqrt(r[i] / T(l.n) - m[i] * m[i] + T(epsilon));
                    sg[i] *= inv_n;
                    sgy[i] *= inv_n;
                  }
                  each(l, [&](std::int64_t j, std::int64_t i) {
                    dg[j] = r[i] * (gg[j] - sg[i] - yg[j] * sgy[i]);
                  });
                });
              });
              return std::vector<Array>{dx};
            },
            [ax, epsilon](const std::vector<Array>& in, const std::vector<bool>&) {
              return standardize(in[0], loom::detail::shift_axes(numpy::Axes(ax), in[0].ndim() - 1),
                                 epsilon);
            });
        return out;
      });
}

Array one_hot(const Array& x, std::int64_t num_classes, DType dtype, int axis) {
  loom::detail::check_valid(x, "one_hot");
  const int r = x.ndim() + 1;
  const int a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r) {
    throw Error("one_hot: axis " + std::to_string(axis) + " is out of range for the result of " +
                "rank " + std::to_string(r) + " (input " + describe(x) + ")" +
                detail::module_path_suffix());
  }
  Array out = numpy::one_hot(x, num_classes, dtype);
  return a == r - 1 ? out : numpy::moveaxis(out, -1, a);
}

Array PReLU::call(const Array& inputs) const {
  loom::detail::check_valid(inputs, "PReLU");
  const Array slope =
      param("negative_slope", initializers::constant(negative_slope_init), Shape{}, param_dtype);
  // As Flax: jnp.where(inputs >= 0, inputs, jnp.asarray(negative_slope, inputs.dtype) * inputs).
  return numpy::where(inputs >= 0, inputs, slope.astype(inputs.dtype()) * inputs);
}

}  // namespace loom::nn
