// jax.nn's functions along axes (softmax, log_softmax, standardize, glu, one_hot, logsumexp)
// and flax.linen.PReLU. The reduced axes are laid out as (outer, n, inner): adjacent axes are
// merged in place, others moved last with one transpose; each group is one fused pass.
#include <algorithm>
#include <string>
#include <vector>

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
    return f(x, l);
  }
  const bool adjacent = ax.back() - ax.front() + 1 == int(ax.size());
  if (adjacent) {
    for (int i = 0; i < s.size(); ++i) {
      (i < ax.front() ? l.outer : i <= ax.back() ? l.n : l.inner) *= s[i];
    }
    return f(x, l);
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
  return numpy::transpose(f(numpy::transpose(x, perm), l), inverse);
}

template <typename T>
void group_max(const T* x, const Layout& l, T* m) {
  std::fill(m, m + l.inner, -std::numeric_limits<T>::infinity());
  for (std::int64_t k = 0; k < l.n; ++k) {
    const T* row = x + k * l.inner;
    for (std::int64_t i = 0; i < l.inner; ++i) m[i] = row[i] > m[i] ? row[i] : m[i];
  }
}

template <typename T>
void group_sum(const T* x, const Layout& l, T* s) {
  std::fill(s, s + l.inner, T(0));
  for (std::int64_t k = 0; k < l.n; ++k) {
    const T* row = x + k * l.inner;
    for (std::int64_t i = 0; i < l.inner; ++i) s[i] += row[i];
  }
}

// sum over k of a[k, i] * b[k, i].
template <typename T>
void group_dot(const T* a, const T* b, const Layout& l, T* s) {
  std::fill(s, s + l.inner, T(0));
  for (std::int64_t k = 0; k < l.n; ++k) {
    for (std::int64_t i = 0; i < l.inner; ++i) s[i] += a[k * l.inner + i] * b[k * l.inner + i];
  }
}

// The single-value reductions when inner == 1 (a flat row: the loop the compiler vectorizes).
template <typename T>
T row_max(const T* x, std::int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::int64_t k = 0; k < n; ++k) m = x[k] > m ? x[k] : m;
  return m;
}

// Runs per_group(o, scratch...) for every outer group o, in parallel over groups.
template <typename F>
void for_groups(const Layout& l, F&& per_group) {
  const std::int64_t group = std::max<std::int64_t>(1, l.n * l.inner);
  loom::detail::parallel_for(
      l.outer,
      [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t o = b; o < e; ++o) per_group(o);
      },
      std::max<std::int64_t>(1, loom::detail::kParallelGrain / group));
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
    for_groups(l, [&](std::int64_t o) {
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
  loom::detail::record(out, {&x}, [x = x.detached(), l, half](const Array& g0) {
    const Array g = g0.dtype() == x.dtype() ? g0 : g0.astype(x.dtype());
    Array dx = Array::empty(x.shape(), x.dtype());
    loom::detail::dispatch_float(x.dtype(), "glu", [&]<typename T>() {
      const T* px = x.data<T>();
      const T* pg = g.data<T>();
      T* pd = dx.mutable_data<T>();
      for_groups(l, [&](std::int64_t o) {
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
  });
  return out;
}

namespace {

// softmax (log = false) or log_softmax (log = true) along the layout's middle axis.
Array softmax_impl(const Array& x0, const numpy::Axes& axes, bool is_log, const char* op) {
  return along_axes(as_float(x0), axes, op, [&](const Array& x, const Layout& l) {
    Array out = Array::empty(x.shape(), x.dtype());
    loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = out.mutable_data<T>();
      const std::int64_t group = l.n * l.inner;
      for_groups(l, [&](std::int64_t o) {
        const T* xg = px + o * group;
        T* yg = py + o * group;
        std::vector<T> m(std::size_t(l.inner)), s(std::size_t(l.inner));
        if (l.inner == 1) {
          m[0] = row_max(xg, l.n);
        } else {
          group_max(xg, l, m.data());
        }
        for (std::int64_t k = 0; k < l.n; ++k) {
          for (std::int64_t i = 0; i < l.inner; ++i)
            yg[k * l.inner + i] = xg[k * l.inner + i] - m[std::size_t(i)];
        }
        if (is_log) {
          // y = shifted - log(sum(exp(shifted))); exp goes through the output as scratch.
          std::vector<T> shifted(yg, yg + group);
          exp_inplace(yg, group);
          group_sum(yg, l, s.data());
          vlog(s.data(), s.data(), l.inner);
          for (std::int64_t k = 0; k < l.n; ++k) {
            for (std::int64_t i = 0; i < l.inner; ++i) {
              yg[k * l.inner + i] = shifted[std::size_t(k * l.inner + i)] - s[std::size_t(i)];
            }
          }
        } else {
          exp_inplace(yg, group);
          group_sum(yg, l, s.data());
          for (auto& v : s) v = T(1) / v;
          for (std::int64_t k = 0; k < l.n; ++k) {
            for (std::int64_t i = 0; i < l.inner; ++i) yg[k * l.inner + i] *= s[std::size_t(i)];
          }
        }
      });
    });
    loom::detail::record(out, {&x}, [y = out.detached(), l, is_log, op](const Array& g0) {
      const Array g = g0.dtype() == y.dtype() ? g0 : g0.astype(y.dtype());
      Array dx = Array::empty(y.shape(), y.dtype());
      loom::detail::dispatch_float(y.dtype(), op, [&]<typename T>() {
        const T* py = y.data<T>();
        const T* pg = g.data<T>();
        T* pd = dx.mutable_data<T>();
        const std::int64_t group = l.n * l.inner;
        for_groups(l, [&](std::int64_t o) {
          const T* yg = py + o * group;
          const T* gg = pg + o * group;
          T* dg = pd + o * group;
          std::vector<T> s(std::size_t(l.inner));
          if (is_log) {  // dx = g - softmax * sum(g)
            group_sum(gg, l, s.data());
            std::copy(yg, yg + group, dg);
            exp_inplace(dg, group);
            for (std::int64_t k = 0; k < l.n; ++k) {
              for (std::int64_t i = 0; i < l.inner; ++i) {
                const std::int64_t j = k * l.inner + i;
                dg[j] = gg[j] - dg[j] * s[std::size_t(i)];
              }
            }
          } else {  // dx = y * (g - sum(g * y))
            group_dot(gg, yg, l, s.data());
            for (std::int64_t k = 0; k < l.n; ++k) {
              for (std::int64_t i = 0; i < l.inner; ++i) {
                const std::int64_t j = k * l.inner + i;
                dg[j] = yg[j] * (gg[j] - s[std::size_t(i)]);
              }
            }
          }
        });
      });
      return std::vector<Array>{dx};
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
  return along_axes(as_float(x0), axes, "standardize", [&](const Array& x, const Layout& l) {
    Array out = Array::empty(x.shape(), x.dtype());
    loom::detail::dispatch_float(x.dtype(), "standardize", [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = out.mutable_data<T>();
      const std::int64_t group = l.n * l.inner;
      const T inv_n = T(1) / T(l.n);
      for_groups(l, [&](std::int64_t o) {
        const T* xg = px + o * group;
        T* yg = py + o * group;
        std::vector<T> m(std::size_t(l.inner)), q(std::size_t(l.inner));
        group_sum(xg, l, m.data());
        group_dot(xg, xg, l, q.data());
        for (std::int64_t i = 0; i < l.inner; ++i) {
          const auto u = std::size_t(i);
          m[u] *= inv_n;
          // As jax.nn.standardize: variance = mean(x^2) - mean(x)^2, then rsqrt(var + eps).
          q[u] = T(1) / std::sqrt(q[u] * inv_n - m[u] * m[u] + T(epsilon));
        }
        for (std::int64_t k = 0; k < l.n; ++k) {
          for (std::int64_t i = 0; i < l.inner; ++i) {
            yg[k * l.inner + i] = (xg[k * l.inner + i] - m[std::size_t(i)]) * q[std::size_t(i)];
          }
        }
      });
    });
    loom::detail::record(
        out, {&x}, [x = x.detached(), y = out.detached(), l, epsilon](const Array& g0) {
          const Array g = g0.dtype() == y.dtype() ? g0 : g0.astype(y.dtype());
          Array dx = Array::empty(y.shape(), y.dtype());
          loom::detail::dispatch_float(y.dtype(), "standardize", [&]<typename T>() {
            const T* px = x.data<T>();
            const T* py = y.data<T>();
            const T* pg = g.data<T>();
            T* pd = dx.mutable_data<T>();
            const std::int64_t group = l.n * l.inner;
            const T inv_n = T(1) / T(l.n);
            for_groups(l, [&](std::int64_t o) {
              const T* xg = px + o * group;
              const T* yg = py + o * group;
              const T* gg = pg + o * group;
              T* dg = pd + o * group;
              // dx = r (g - mean(g) - y mean(g y)), r = rsqrt(var + eps) recomputed from x.
              std::vector<T> m(std::size_t(l.inner)), r(std::size_t(l.inner)),
                  sg(std::size_t(l.inner)), sgy(std::size_t(l.inner));
              group_sum(xg, l, m.data());
              group_dot(xg, xg, l, r.data());
              group_sum(gg, l, sg.data());
              group_dot(gg, yg, l, sgy.data());
              for (std::int64_t i = 0; i < l.inner; ++i) {
                const auto u = std::size_t(i);
                m[u] *= inv_n;
                r[u] = T(1) / std::sqrt(r[u] * inv_n - m[u] * m[u] + T(epsilon));
                sg[u] *= inv_n;
                sgy[u] *= inv_n;
              }
              for (std::int64_t k = 0; k < l.n; ++k) {
                for (std::int64_t i = 0; i < l.inner; ++i) {
                  const std::int64_t j = k * l.inner + i;
                  const auto u = std::size_t(i);
                  dg[j] = r[u] * (gg[j] - sg[u] - yg[j] * sgy[u]);
                }
              }
            });
          });
          return std::vector<Array>{dx};
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
