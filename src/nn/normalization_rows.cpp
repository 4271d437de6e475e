// The fused normalization kernel (see normalization_rows.hpp): per row, sums of x and x^2 in 16
// independent lanes (vectorizable, like loom's reductions' leaves), then the output in one
// elementwise pass. The VJP is a second fused pass:
//   xhat = (x - mean) * rstd,  g' = g * scale,
//   dx = rstd * (g' - mean(g') - c * xhat * mean(g' * xhat))   (centred; c is the derivative of
//        max(0, var) as JAX's: 1 above 0, 1/2 at 0, 0 below),
//   dx = rstd * (g' - xhat * mean(g' * xhat))                   (RMS, xhat = x * rstd),
//   dscale = sum over rows of g * xhat, dbias = sum over rows of g.
#include "normalization_rows.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "detail/composite_vjp.hpp"
#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/numpy/reductions.hpp"

namespace loom::nn::detail {
namespace {

constexpr int kLanes = 16;

// Lane sums of a[k] and a[k] * b[k] over [0, n) (a == b gives the sum and sum of squares):
// 16 independent lanes within blocks of kBlock elements (vectorizable), the block totals added
// in double, so the rounding error stays that of a kBlock / 16 element sum for any row length.
constexpr std::int64_t kBlock = 4096;
template <typename T>
void dot_sums(const T* a, const T* b, std::int64_t n, T& sa, T& sab) {
  double ta = 0, tab = 0;
  for (std::int64_t start = 0; start < n; start += kBlock) {
    const std::int64_t end = std::min(n, start + kBlock);
    T la[kLanes] = {}, lab[kLanes] = {};
    std::int64_t k = start;
    for (; k + kLanes <= end; k += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        la[l] += a[k + l];
        lab[l] += a[k + l] * b[k + l];
      }
    }
    for (int l = 0; k + l < end; ++l) {
      la[l] += a[k + l];
      lab[l] += a[k + l] * b[k + l];
    }
    T ba = T(0), bab = T(0);
    for (int l = 0; l < kLanes; ++l) {
      ba += la[l];
      bab += lab[l];
    }
    ta += double(ba);
    tab += double(bab);
  }
  sa = static_cast<T>(ta);
  sab = static_cast<T>(tab);
}

template <typename T>
void row_sums(const T* x, std::int64_t n, T& s, T& q) {
  dot_sums(x, x, n, s, q);
}

std::int64_t row_grain(std::int64_t n) {
  return std::max<std::int64_t>(1, loom::detail::kParallelGrain / std::max<std::int64_t>(n, 1));
}

// mean, rstd and the max(0, .) derivative factor of each row.
struct RowStats {
  Array mean, rstd, clip;
};

template <typename T>
void forward(const T* x, const T* scale, const T* bias, T* y, T* mean, T* rstd, T* clip,
             std::int64_t rows, std::int64_t n, double epsilon, bool centred) {
  const T eps = static_cast<T>(epsilon);
  loom::detail::parallel_for(
      rows,
      [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
          const T* xr = x + r * n;
          T* yr = y + r * n;
          T s, q;
          row_sums(xr, n, s, q);
          // sum / n as jnp.mean does (times 1/n would round differently)
          T mu = centred ? s / static_cast<T>(n) : T(0);
          T var = q / static_cast<T>(n);
          T c = T(1);
          if (centred) {
            const T d = var - mu * mu;
            c = d > T(0) ? T(1) : (d == T(0) ? T(0.5) : T(0));
            var = d > T(0) ? d : T(0);
          }
          const T rs = T(1) / std::sqrt(var + eps);
          mean[r] = mu;
          rstd[r] = rs;
          clip[r] = c;
          if (scale != nullptr && bias != nullptr) {
            for (std::int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * (rs * scale[k]) + bias[k];
          } else if (scale != nullptr) {
            for (std::int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * (rs * scale[k]);
          } else if (bias != nullptr) {
            for (std::int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs + bias[k];
          } else {
            for (std::int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs;
          }
        }
      },
      row_grain(n));
}

// dx, and g * xhat per element (gx, summed over rows into dscale by the caller).
template <typename T>
void backward(const T* g, const T* x, const T* scale, const T* mean, const T* rstd, const T* clip,
              T* dx, T* gx, std::int64_t rows, std::int64_t n, bool centred) {
  const T inv_n = T(1) / static_cast<T>(n);
  loom::detail::parallel_for(
      rows,
      [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
          const T* gr = g + r * n;
          const T* xr = x + r * n;
          T* dxr = dx + r * n;
          T* hr = gx + r * n;
          const T mu = mean[r], rs = rstd[r];
          for (std::int64_t k = 0; k < n; ++k) hr[k] = (xr[k] - mu) * rs;  // xhat
          if (scale != nullptr) {
            for (std::int64_t k = 0; k < n; ++k) dxr[k] = gr[k] * scale[k];  // g'
          } else {
            for (std::int64_t k = 0; k < n; ++k) dxr[k] = gr[k];
          }
          T a, b;
          dot_sums(dxr, hr, n, a, b);
          a = centred ? a * inv_n : T(0);
          b = b * inv_n * clip[r];
          for (std::int64_t k = 0; k < n; ++k) {
            const T xh = hr[k];
            hr[k] = gr[k] * xh;
            dxr[k] = rs * (dxr[k] - a - xh * b);
          }
        }
      },
      row_grain(n));
}

// The VJP's formulas (see the file comment) in differentiable loom ops, for differentiating the
// backward pass; clip (the max(0, var) derivative factor per row) is piecewise constant.
std::vector<Array> composite_vjp(const Array& x, const Array& scale, const Shape& bias_shape,
                                 bool has_bias, const Array& clip, const Array& g,
                                 std::int64_t rows, std::int64_t n, double epsilon, bool centred) {
  const Array xr = numpy::reshape(x, {rows, n});
  const Array gr = numpy::reshape(g, {rows, n});
  Array xhat, rstd;
  if (centred) {
    const Array mu = numpy::mean(xr, 1, true);
    const Array d = numpy::mean(xr * xr, 1, true) - mu * mu;
    rstd = numpy::rsqrt(numpy::maximum(d, numpy::zeros_like(d)) + epsilon);
    xhat = (xr - mu) * rstd;
  } else {
    rstd = numpy::rsqrt(numpy::mean(xr * xr, 1, true) + epsilon);
    xhat = xr * rstd;
  }
  const Array gs = scale.valid() ? gr * numpy::reshape(scale, {n}) : gr;
  const Array b = numpy::mean(gs * xhat, 1, true) * clip.reshaped_view(Shape{rows, 1});
  const Array inner = centred ? gs - numpy::mean(gs, 1, true) - xhat * b : gs - xhat * b;
  std::vector<Array> grads{numpy::reshape(rstd * inner, x.shape().to_vector())};
  if (scale.valid()) {
    grads.push_back(numpy::reshape(numpy::sum(gr * xhat, 0), scale.shape().to_vector()));
  }
  if (has_bias) grads.push_back(numpy::reshape(numpy::sum(gr, 0), bias_shape.to_vector()));
  return grads;
}

}  // namespace

Array normalize_rows(const Array& x, const Array& scale, const Array& bias, std::int64_t n,
                     double epsilon, bool centred) {
  const std::int64_t rows = n > 0 ? x.size() / n : 0;
  const Shape stats_shape{rows};
  Array y = Array::empty(x.shape(), x.dtype());
  Array mean = Array::empty(stats_shape, x.dtype());
  Array rstd = Array::empty(stats_shape, x.dtype());
  Array clip = Array::empty(stats_shape, x.dtype());
  loom::detail::dispatch_float(x.dtype(), "normalize", [&]<typename T>() {
    forward<T>(x.data<T>(), scale.valid() ? scale.data<T>() : nullptr,
               bias.valid() ? bias.data<T>() : nullptr, y.mutable_data<T>(), mean.mutable_data<T>(),
               rstd.mutable_data<T>(), clip.mutable_data<T>(), rows, n, epsilon, centred);
  });
  std::vector<Array> inputs{x};
  if (scale.valid()) inputs.push_back(scale);
  if (bias.valid()) inputs.push_back(bias);
  if (!loom::detail::transforming()) return y;
  static constexpr loom::detail::Primitive kNormalizeRows{.name = "normalize_rows"};
  loom::detail::bind(
      kNormalizeRows, y, inputs,
      [n, epsilon, centred, has_scale = scale.valid(),
       has_bias = bias.valid()](const std::vector<Array>& in) {
        return normalize_rows(in[0], has_scale ? in[1] : Array(),
                              has_bias ? in[has_scale ? 2 : 1] : Array(), n, epsilon, centred);
      },
      [x, scale, bias_shape = bias.valid() ? bias.shape() : Shape{}, has_bias = bias.valid(), mean,
       rstd, clip, rows, n, epsilon, centred](const Array& g_in, const Array&) {
        const Array g = g_in.dtype() == x.dtype() ? g_in : g_in.astype(x.dtype());
        if (loom::detail::use_composite_vjp()) {
          return composite_vjp(x, scale, bias_shape, has_bias, clip, g, rows, n, epsilon, centred);
        }
        Array dx = Array::empty(x.shape(), x.dtype());
        Array gx = Array::empty(Shape{rows, n}, x.dtype());
        loom::detail::dispatch_float(x.dtype(), "normalize", [&]<typename T>() {
          backward<T>(g.data<T>(), x.data<T>(), scale.valid() ? scale.data<T>() : nullptr,
                      mean.data<T>(), rstd.data<T>(), clip.data<T>(), dx.mutable_data<T>(),
                      gx.mutable_data<T>(), rows, n, centred);
        });
        std::vector<Array> grads{dx};
        if (scale.valid()) grads.push_back(numpy::sum(gx, 0).reshaped_view(scale.shape()));
        if (has_bias) {
          grads.push_back(numpy::sum(g.reshaped_view(Shape{rows, n}), 0).reshaped_view(bias_shape));
        }
        return grads;
      },
      // Rows of n trailing elements: a batched x is just more rows when scale and bias are
      // shared (per-example scales loop).
      [n, epsilon, centred, has_scale = scale.valid(), has_bias = bias.valid()](
          const std::vector<Array>& in, const std::vector<bool>& batched) {
        for (std::size_t i = 1; i < in.size(); ++i) {
          if (batched[i]) return Array();
        }
        return normalize_rows(in[0], has_scale ? in[1] : Array(),
                              has_bias ? in[has_scale ? 2 : 1] : Array(), n, epsilon, centred);
      });
  return y;
}

}  // namespace loom::nn::detail
