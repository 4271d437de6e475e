// jax.nn's elementwise activations (flax/linen/activation.py re-exports them): one fused kernel
// each (src/nn/activation_kernels.hpp), bound as a primitive with its VJP's kernel and, for
// differentiating the backward pass, the same VJP in composite differentiable ops.
#include "loom/nn/activation.hpp"

#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "nn/activation_kernels.hpp"

namespace loom::nn {
using namespace kernels;  // NOLINT: the block kernels of this file

namespace {

// The standard normal CDF (1 + erf(x / sqrt 2)) / 2, a primitive of its own so that gelu's
// composite VJP (used when the backward pass is differentiated) stays differentiable.
Array normal_cdf(const Array& x) {
  Array out = Array::empty(x.shape(), x.dtype());
  loom::detail::dispatch_float(x.dtype(), "normal_cdf", [&]<typename T>() {
    const T* px = x.data<T>();
    T* py = out.mutable_data<T>();
    blocks(x.size(), [&](std::int64_t s, std::int64_t len) {
      T e[kBlock];
      for (std::int64_t i = 0; i < len; ++i) e[i] = px[s + i] * T(kInvSqrt2);
      verf(e, e, len);
      for (std::int64_t i = 0; i < len; ++i) py[s + i] = (e[i] + T(1)) / T(2);
    });
  });
  static constexpr loom::detail::Primitive kNormalCdf{
      .name = "normal_cdf",
      .batching = loom::detail::Batching::elementwise,
      .forward = loom::detail::Forward::symmetric};
  if (loom::detail::transforming()) {
    loom::detail::bind(
        kNormalCdf, out, {&x}, [](const std::vector<Array>& in) { return normal_cdf(in[0]); },
        [x](const Array& g, const Array&) {
          return std::vector<Array>{g * kInvSqrt2Pi * numpy::exp(-0.5 * (x * x))};
        });
  }
  return out;
}

}  // namespace

// ---- elementwise activations ---------------------------------------------------------------

Array relu(const Array& x) {
  loom::detail::check_valid(x, "relu");
  if (!is_floating(x.dtype())) return numpy::maximum(x, 0);  // int stays int, as JAX
  return elementwise(
      x, "relu",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] < T(0) ? T(0) : a[i];
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        // g is read unconditionally so the select vectorizes: written as `a > 0 ? g[i] : 0` the
        // compiler keeps a branch per element (a load it may not hoist), which mispredicts on
        // about half of a relu's inputs and made this pass 9x slower than the forward one.
        for (std::int64_t i = 0; i < n; ++i) {
          const T gi = g[i];
          d[i] = a[i] > T(0) ? gi : T(0);
        }
      },
      [](const Array& a) { return relu(a); },
      [](const Array& a, const Array&, const Array& g) { return numpy::where(a > 0.0, g, 0.0); });
}

Array relu6(const Array& x) {
  // JAX: jnp.minimum(jnp.maximum(x, 0), 6.); the float 6. makes integer inputs float32.
  return elementwise(
      x, "relu6",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = a[i] < T(0) ? T(0) : (a[i] > T(6) ? T(6) : a[i]);
        }
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          const T gi = g[i];  // read unconditionally: the select vectorizes (see relu)
          d[i] = a[i] > T(0) && a[i] < T(6) ? gi : T(0);
        }
      },
      [](const Array& a) { return relu6(a); },
      [](const Array& a, const Array&, const Array& g) {
        return numpy::where(numpy::logical_and(a > 0.0, a < 6.0), g, 0.0);
      });
}

Array sigmoid(const Array& x) {
  return elementwise(
      x, "sigmoid", []<typename T>(const T* a, T* y, std::int64_t n) { vsigmoid(a, y, n); },
      []<typename T>(const T*, const T* y, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * y[i] * (T(1) - y[i]);
      },
      [](const Array& a) { return sigmoid(a); },
      [](const Array&, const Array& y, const Array& g) { return g * y * (1.0 - y); });
}

Array log_sigmoid(const Array& x) {
  // log_sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)); derivative sigmoid(-x).
  return elementwise(
      x, "log_sigmoid",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        T e[kBlock];
        exp_neg_abs(a, e, n);
        vlog1p(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] = (a[i] < T(0) ? a[i] : T(0)) - e[i];
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T e[kBlock];
        exp_neg_abs(a, e, n);
        for (std::int64_t i = 0; i < n; ++i) {
          const T r = T(1) / (T(1) + e[i]);
          d[i] = g[i] * (a[i] >= T(0) ? e[i] * r : r);
        }
      },
      [](const Array& a) { return log_sigmoid(a); },
      [](const Array& a, const Array&, const Array& g) { return g * sigmoid(-a); });
}

Array softplus(const Array& x) {
  return elementwise(
      x, "softplus", []<typename T>(const T* a, T* y, std::int64_t n) { vsoftplus(a, y, n); },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T s[kBlock];
        vsigmoid(a, s, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * s[i];
      },
      [](const Array& a) { return softplus(a); },
      [](const Array& a, const Array&, const Array& g) { return g * sigmoid(a); });
}

Array silu(const Array& x) {
  return elementwise(
      x, "silu",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        vsigmoid(a, y, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] *= a[i];
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T s[kBlock];
        vsigmoid(a, s, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * s[i] * (T(1) + a[i] * (T(1) - s[i]));
      },
      [](const Array& a) { return silu(a); },
      [](const Array& a, const Array&, const Array& g) {
        const Array s = sigmoid(a);
        return g * s * (1.0 + a * (1.0 - s));
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
        []<typename T>(const T* a, T* y, std::int64_t n) {
          T t[kBlock];
          for (std::int64_t i = 0; i < n; ++i) {
            t[i] = T(kSqrt2OverPi) * (a[i] + T(0.044715) * (a[i] * (a[i] * a[i])));
          }
          vtanh(t, t, n);
          for (std::int64_t i = 0; i < n; ++i) y[i] = T(0.5) * a[i] * (T(1) + t[i]);
        },
        []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
          T t[kBlock];
          for (std::int64_t i = 0; i < n; ++i) {
            t[i] = T(kSqrt2OverPi) * (a[i] + T(0.044715) * (a[i] * (a[i] * a[i])));
          }
          vtanh(t, t, n);
          for (std::int64_t i = 0; i < n; ++i) {
            const T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * a[i] * a[i]);
            d[i] = g[i] * (T(0.5) * (T(1) + t[i]) + T(0.5) * a[i] * (T(1) - t[i] * t[i]) * dinner);
          }
        },
        [](const Array& a) { return gelu(a, true); },
        [](const Array& a, const Array&, const Array& g) {
          const Array t = numpy::tanh(kSqrt2OverPi * (a + 0.044715 * (a * (a * a))));
          const Array dinner = kSqrt2OverPi * (1.0 + (3 * 0.044715) * (a * a));
          return g * (0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * dinner);
        });
  }
  return elementwise(
      x, "gelu",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = a[i] * T(kInvSqrt2);
        verf(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] * (e[i] + T(1)) / T(2);
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T e[kBlock], c[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = T(-0.5) * a[i] * a[i];
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) c[i] = a[i] * T(kInvSqrt2);
        verf(c, c, n);
        for (std::int64_t i = 0; i < n; ++i) {
          const T cdf = (c[i] + T(1)) / T(2);
          d[i] = g[i] * (cdf + a[i] * T(kInvSqrt2Pi) * e[i]);
        }
      },
      [](const Array& a) { return gelu(a, false); },
      [](const Array& a, const Array&, const Array& g) {
        return g * (normal_cdf(a) + a * kInvSqrt2Pi * numpy::exp(-0.5 * (a * a)));
      });
}

Array elu(const Array& x, double alpha) {
  return elementwise(
      x, "elu",
      [alpha]<typename T>(const T* a, T* y, std::int64_t n) {
        T m[kBlock];
        for (std::int64_t i = 0; i < n; ++i) m[i] = a[i] > T(0) ? T(0) : a[i];
        vexpm1(m, m, n);
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] > T(0) ? a[i] : T(alpha) * m[i];
      },
      [alpha]<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = a[i] > T(0) ? T(0) : a[i];
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) ? g[i] : g[i] * T(alpha) * e[i];
      },
      [alpha](const Array& a) { return elu(a, alpha); },
      [alpha](const Array& a, const Array&, const Array& g) {
        return numpy::where(a > 0.0, g,
                            g * alpha * numpy::exp(numpy::minimum(a, numpy::zeros_like(a))));
      });
}

Array celu(const Array& x, double alpha) {
  return elementwise(
      x, "celu",
      [alpha]<typename T>(const T* a, T* y, std::int64_t n) {
        T m[kBlock];
        for (std::int64_t i = 0; i < n; ++i) m[i] = (a[i] < T(0) ? a[i] : T(0)) / T(alpha);
        vexpm1(m, m, n);
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = (a[i] > T(0) ? a[i] : T(0)) + T(alpha) * m[i];
        }
      },
      [alpha]<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = (a[i] < T(0) ? a[i] : T(0)) / T(alpha);
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) ? g[i] : g[i] * e[i];
      },
      [alpha](const Array& a) { return celu(a, alpha); },
      [alpha](const Array& a, const Array&, const Array& g) {
        return numpy::where(a > 0.0, g,
                            g * numpy::exp(numpy::minimum(a, numpy::zeros_like(a)) / alpha));
      });
}

Array selu(const Array& x) {
  return elementwise(
      x, "selu",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        T m[kBlock];
        for (std::int64_t i = 0; i < n; ++i) m[i] = a[i] > T(0) ? T(0) : a[i];
        vexpm1(m, m, n);
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = T(kSeluScale) * (a[i] > T(0) ? a[i] : T(kSeluAlpha) * m[i]);
        }
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T e[kBlock];
        for (std::int64_t i = 0; i < n; ++i) e[i] = a[i] > T(0) ? T(0) : a[i];
        vexp(e, e, n);
        for (std::int64_t i = 0; i < n; ++i) {
          d[i] = g[i] * T(kSeluScale) * (a[i] > T(0) ? T(1) : T(kSeluAlpha) * e[i]);
        }
      },
      [](const Array& a) { return selu(a); },
      [](const Array& a, const Array&, const Array& g) {
        const Array neg = kSeluAlpha * numpy::exp(numpy::minimum(a, numpy::zeros_like(a)));
        return g * kSeluScale * numpy::where(a > 0.0, numpy::ones_like(a), neg);
      });
}

Array leaky_relu(const Array& x, double negative_slope) {
  return elementwise(
      x, "leaky_relu",
      [negative_slope]<typename T>(const T* a, T* y, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] >= T(0) ? a[i] : T(negative_slope) * a[i];
      },
      [negative_slope]<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] >= T(0) ? g[i] : T(negative_slope) * g[i];
      },
      [negative_slope](const Array& a) { return leaky_relu(a, negative_slope); },
      [negative_slope](const Array& a, const Array&, const Array& g) {
        return numpy::where(a >= 0.0, g, g * negative_slope);
      });
}

Array hard_sigmoid(const Array& x) {
  // relu6(x + 3) / 6; relu6's JAX derivative is 0 at the kinks, so here 0 at -3 and 3.
  return elementwise(
      x, "hard_sigmoid",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          y[i] = (z < T(0) ? T(0) : (z > T(6) ? T(6) : z)) / T(6);
        }
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          const T gi = g[i] / T(6);  // read unconditionally: the select vectorizes (see relu)
          d[i] = z > T(0) && z < T(6) ? gi : T(0);
        }
      },
      [](const Array& a) { return hard_sigmoid(a); },
      [](const Array& a, const Array&, const Array& g) {
        return numpy::where(numpy::logical_and(a > -3.0, a < 3.0), g / 6.0, 0.0);
      });
}

Array hard_silu(const Array& x) {
  return elementwise(
      x, "hard_silu",
      []<typename T>(const T* a, T* y, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          y[i] = a[i] * ((z < T(0) ? T(0) : (z > T(6) ? T(6) : z)) / T(6));  // x * hard_sigmoid(x)
        }
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          const T z = a[i] + T(3);
          const T hs = (z < T(0) ? T(0) : (z > T(6) ? T(6) : z)) / T(6);
          const T dhs = z > T(0) && z < T(6) ? T(1) / T(6) : T(0);
          d[i] = g[i] * (hs + a[i] * dhs);
        }
      },
      [](const Array& a) { return hard_silu(a); },
      [](const Array& a, const Array&, const Array& g) {
        const Array inside = numpy::logical_and(a > -3.0, a < 3.0);
        return g * (hard_sigmoid(a) + numpy::where(inside, a / 6.0, 0.0));
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
      []<typename T>(const T* a, T* y, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          y[i] = a[i] > T(1) ? T(1) : (a[i] < T(-1) ? T(-1) : a[i]);
        }
      },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) {
          const T gi = g[i];  // read unconditionally: the select vectorizes (see relu)
          d[i] = a[i] > T(1) || a[i] < T(-1) ? T(0) : gi;
        }
      },
      [](const Array& a) { return hard_tanh(a); },
      [](const Array& a, const Array&, const Array& g) {
        return numpy::where(numpy::logical_or(a > 1.0, a < -1.0), 0.0, g);
      });
}

}  // namespace loom::nn
