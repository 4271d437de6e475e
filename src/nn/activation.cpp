// jax.nn activations (flax/linen/activation.py re-exports them): one fused kernel per function,
// processed in cache-sized blocks so that float32 exp/log/tanh run through loom's vectorized
// kernels, and a fused VJP kernel recorded next to each.
#include "loom/nn/activation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/dispatch.hpp"
#include "detail/tape.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"
#include "numpy/vmath.hpp"

// The block scratch arrays are written in full before each vmath call reads them; GCC cannot see
// that through the loop bounds and warns (a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace loom::nn {
namespace {

constexpr std::int64_t kBlock = 256;  // elements per block: scratch arrays stay in L1

constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;  // sqrt(2 / pi)
constexpr double kInvSqrt2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;  // 1 / sqrt(2 pi)
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;    // jax.nn.selu's constants
constexpr double kSeluScale = 1.0507009873554804934193349852946;

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// ---- block math: y = f(x) over n <= kBlock elements ------------------------------------

template <typename T>
void vexp(const T* in, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    numpy::vmath::exp_f32(in, out, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::exp(in[i]);
  }
}

template <typename T>
void vtanh(const T* in, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    numpy::vmath::tanh_f32(in, out, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
  }
}

template <typename T>
void vlog(const T* in, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    numpy::vmath::log_f32(in, out, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::log(in[i]);
  }
}

// log1p(u) for u >= 0: log(1 + u) corrected by u / ((1 + u) - 1) (Goldberg), exact near 0.
template <typename T>
void vlog1p(const T* u, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    T w[kBlock], l[kBlock];  // out may alias u
    for (std::int64_t i = 0; i < n; ++i) w[i] = T(1) + u[i];
    vlog(w, l, n);
    for (std::int64_t i = 0; i < n; ++i) {
      const T d = w[i] - T(1);
      out[i] = d == T(0) ? u[i] : l[i] * (u[i] / d);
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::log1p(u[i]);
  }
}

// expm1(x): exp(x) - 1 corrected by x / log(exp(x)) (Kahan), exact near 0.
template <typename T>
void vexpm1(const T* x, T* out, std::int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    T u[kBlock], l[kBlock];
    vexp(x, u, n);
    vlog(u, l, n);
    for (std::int64_t i = 0; i < n; ++i) {
      const T um1 = u[i] - T(1);
      T r = um1 * (x[i] / l[i]);
      r = u[i] == T(1) ? x[i] : r;
      r = um1 == T(-1) ? T(-1) : r;
      r = u[i] == std::numeric_limits<T>::infinity() ? u[i] : r;
      out[i] = x[i] != x[i] ? x[i] : r;
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = std::expm1(x[i]);
  }
}

// e = exp(-|x|), the stable ingredient of sigmoid and softplus.
template <typename T>
void exp_neg_abs(const T* x, T* e, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) e[i] = x[i] < T(0) ? x[i] : -x[i];
  vexp(e, e, n);
}

template <typename T>
void vsigmoid(const T* x, T* y, std::int64_t n) {
  T e[kBlock];
  exp_neg_abs(x, e, n);
  for (std::int64_t i = 0; i < n; ++i) {
    const T r = T(1) / (T(1) + e[i]);
    y[i] = x[i] >= T(0) ? r : e[i] * r;
  }
}

// softplus(x) = max(x, 0) + log1p(exp(-|x|)).
template <typename T>
void vsoftplus(const T* x, T* y, std::int64_t n) {
  T e[kBlock];
  exp_neg_abs(x, e, n);
  vlog1p(e, e, n);
  for (std::int64_t i = 0; i < n; ++i) y[i] = (x[i] > T(0) ? x[i] : T(0)) + e[i];
}

// ---- the elementwise driver ---------------------------------------------------------------

// Runs f(begin, len) over [0, n) in blocks of at most kBlock, across threads for large n.
template <typename F>
void blocks(std::int64_t n, F&& f) {
  loom::detail::parallel_for(
      n,
      [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t s = b; s < e; s += kBlock) f(s, std::min(kBlock, e - s));
      },
      1 << 13);
}

// An elementwise activation computed in x's floating dtype (float32 for integers and bool).
// fwd(x, y, n) writes y; bwd(x, y, g, dx, n) writes dx (x: input, y: output, g: cotangent).
template <typename Fwd, typename Bwd>
Array elementwise(const Array& x0, const char* op, Fwd fwd, Bwd bwd) {
  loom::detail::check_valid(x0, op);
  Array cast;
  if (!is_floating(x0.dtype())) cast = x0.astype(DType::float32);
  const Array& x = cast.valid() ? cast : x0;
  Array out = Array::empty(x.shape(), x.dtype());
  loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    const T* px = x.data<T>();
    T* py = out.mutable_data<T>();
    blocks(x.size(), [&](std::int64_t s, std::int64_t len) { fwd(px + s, py + s, len); });
  });
  loom::detail::record(out, {&x}, [x = x.detached(), y = out.detached(), bwd, op](const Array& g0) {
    const Array g = g0.dtype() == x.dtype() ? g0 : g0.astype(x.dtype());
    Array dx = Array::empty(x.shape(), x.dtype());
    loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
      const T* px = x.data<T>();
      const T* py = y.data<T>();
      const T* pg = g.data<T>();
      T* pd = dx.mutable_data<T>();
      blocks(x.size(),
             [&](std::int64_t s, std::int64_t len) { bwd(px + s, py + s, pg + s, pd + s, len); });
    });
    return std::vector<Array>{dx};
  });
  return out;
}

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

// ---- elementwise activations ---------------------------------------------------------------

Array relu(const Array& x) {
  loom::detail::check_valid(x, "relu");
  if (!is_floating(x.dtype())) return numpy::maximum(x, 0);  // int stays int, as JAX
  return elementwise(
      x, "relu",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] < T(0) ? T(0) : a[i];
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) ? g[i] : T(0);
      });
}

Array relu6(const Array& x) {
  loom::detail::check_valid(x, "relu6");
  if (!is_floating(x.dtype())) return numpy::minimum(numpy::maximum(x, 0), 6);
  return elementwise(
      x, "relu6",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = a[i] < T(0) ? T(0) : (a[i] > T(6) ? T(6) : a[i]);
        }
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) && a[i] < T(6) ? g[i] : T(0);
      });
}

Array sigmoid(const Array& x) {
  return elementwise(
      x, "sigmoid", [](const auto* a, auto* y, std::int64_t n) { vsigmoid(a, y, n); },
      [](const auto* a, const auto* y, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * y[i] * (T(1) - y[i]);
      });
}

Array log_sigmoid(const Array& x) {
  // log_sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)); derivative sigmoid(-x).
  return elementwise(
      x, "log_sigmoid",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T e[kBlock];
        exp_neg_abs(a, e, n);
        vlog1p(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] = (a[i] < T(0) ? a[i] : T(0)) - e[i];
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T e[kBlock];
        exp_neg_abs(a, e, n);
        for (std::int64_t i = 0; i < n; ++i) {
          const T r = T(1) / (T(1) + e[i]);
          d[i] = g[i] * (a[i] >= T(0) ? e[i] * r : r);
        }
      });
}

Array softplus(const Array& x) {
  return elementwise(
      x, "softplus", [](const auto* a, auto* y, std::int64_t n) { vsoftplus(a, y, n); },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T s[kBlock];
        vsigmoid(a, s, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * s[i];
      });
}

Array silu(const Array& x) {
  return elementwise(
      x, "silu",
      [](const auto* a, auto* y, std::int64_t n) {
        vsigmoid(a, y, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] *= a[i];
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T s[kBlock];
        vsigmoid(a, s, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * s[i] * (T(1) + a[i] * (T(1) - s[i]));
      });
}

Array swish(const Array& x) {
  return silu(x);
}

Array tanh(const Array& x) {
  return numpy::tanh(x);
}

Array gelu(const Array& x, bool approximate) {
  if (approximate) {
    return elementwise(
        x, "gelu",
        [](const auto* a, auto* y, std::int64_t n) {
          using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
          T t[kBlock];
          for (std::int64_t i = 0; i < n; ++i) {
            t[i] = T(kSqrt2OverPi) * (a[i] + T(0.044715) * a[i] * a[i] * a[i]);
          }
          vtanh(t, t, n);
          for (std::int64_t i = 0; i < n; ++i) y[i] = T(0.5) * a[i] * (T(1) + t[i]);
        },
        [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
          using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
          T t[kBlock];
          for (std::int64_t i = 0; i < n; ++i) {
            t[i] = T(kSqrt2OverPi) * (a[i] + T(0.044715) * a[i] * a[i] * a[i]);
          }
          vtanh(t, t, n);
          for (std::int64_t i = 0; i < n; ++i) {
            const T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * a[i] * a[i]);
            d[i] = g[i] * (T(0.5) * (T(1) + t[i]) + T(0.5) * a[i] * (T(1) - t[i] * t[i]) * dinner);
          }
        });
  }
  return elementwise(
      x, "gelu",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = a[i] * (std::erf(a[i] * T(kInvSqrt2)) + T(1)) / T(2);
        }
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = T(-0.5) * a[i] * a[i];
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) {
          const T cdf = (std::erf(a[i] * T(kInvSqrt2)) + T(1)) / T(2);
          d[i] = g[i] * (cdf + a[i] * T(kInvSqrt2Pi) * e[i]);
        }
      });
}

Array elu(const Array& x, double alpha) {
  return elementwise(
      x, "elu",
      [alpha](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T m[kBlock];
        for (std::int64_t i = 0; i < n; ++i) m[i] = a[i] > T(0) ? T(0) : a[i];
        vexpm1(m, m, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] > T(0) ? a[i] : T(alpha) * m[i];
      },
      [alpha](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = a[i] > T(0) ? T(0) : a[i];
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) ? g[i] : g[i] * T(alpha) * e[i];
      });
}

Array celu(const Array& x, double alpha) {
  return elementwise(
      x, "celu",
      [alpha](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T m[kBlock];
        for (std::int64_t i = 0; i < n; ++i) m[i] = (a[i] < T(0) ? a[i] : T(0)) / T(alpha);
        vexpm1(m, m, n);
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = (a[i] > T(0) ? a[i] : T(0)) + T(alpha) * m[i];
        }
      },
      [alpha](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = (a[i] < T(0) ? a[i] : T(0)) / T(alpha);
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) ? g[i] : g[i] * e[i];
      });
}

Array selu(const Array& x) {
  return elementwise(
      x, "selu",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T m[kBlock];
        for (std::int64_t i = 0; i < n; ++i) m[i] = a[i] > T(0) ? T(0) : a[i];
        vexpm1(m, m, n);
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = T(kSeluScale) * (a[i] > T(0) ? a[i] : T(kSeluAlpha) * m[i]);
        }
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = a[i] > T(0) ? T(0) : a[i];
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) {
          d[i] = g[i] * T(kSeluScale) * (a[i] > T(0) ? T(1) : T(kSeluAlpha) * e[i]);
        }
      });
}

Array leaky_relu(const Array& x, double negative_slope) {
  return elementwise(
      x, "leaky_relu",
      [negative_slope](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] >= T(0) ? a[i] : T(negative_slope) * a[i];
      },
      [negative_slope](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] >= T(0) ? g[i] : T(negative_slope) * g[i];
      });
}

Array hard_sigmoid(const Array& x) {
  // relu6(x + 3) / 6; relu6's JAX derivative is 0 at the kinks, so here 0 at -3 and 3.
  return elementwise(
      x, "hard_sigmoid",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          y[i] = (z < T(0) ? T(0) : (z > T(6) ? T(6) : z)) / T(6);
        }
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          d[i] = z > T(0) && z < T(6) ? g[i] / T(6) : T(0);
        }
      });
}

Array hard_silu(const Array& x) {
  return elementwise(
      x, "hard_silu",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          y[i] = a[i] * (z < T(0) ? T(0) : (z > T(6) ? T(6) : z)) / T(6);
        }
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          const T hs = (z < T(0) ? T(0) : (z > T(6) ? T(6) : z)) / T(6);
          const T dhs = z > T(0) && z < T(6) ? T(1) / T(6) : T(0);
          d[i] = g[i] * (hs + a[i] * dhs);
        }
      });
}

Array hard_swish(const Array& x) {
  return hard_silu(x);
}

Array hard_tanh(const Array& x) {
  loom::detail::check_valid(x, "hard_tanh");
  if (!is_floating(x.dtype())) return numpy::clip(x, -1, 1);  // int stays int, as JAX
  return elementwise(
      x, "hard_tanh",
      [](const auto* a, auto* y, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = a[i] > T(1) ? T(1) : (a[i] < T(-1) ? T(-1) : a[i]);
        }
      },
      [](const auto* a, const auto*, const auto* g, auto* d, std::int64_t n) {
        using T = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(1) || a[i] < T(-1) ? T(0) : g[i];
      });
}

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
