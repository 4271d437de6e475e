// jax.nn's elementwise activations (flax/linen/activation.py re-exports them): one fused kernel
// each (src/nn/activation_kernels.hpp), with its VJP's kernel recorded next to it.
#include "loom/nn/activation.hpp"

#include "loom/numpy/elementwise.hpp"
#include "nn/activation_kernels.hpp"

namespace loom::nn {
using namespace kernels;  // NOLINT: the block kernels of this file

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
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) ? g[i] : T(0);
      });
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
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(0) && a[i] < T(6) ? g[i] : T(0);
      });
}

Array sigmoid(const Array& x) {
  return elementwise(
      x, "sigmoid", []<typename T>(const T* a, T* y, std::int64_t n) { vsigmoid(a, y, n); },
      []<typename T>(const T*, const T* y, const T* g, T* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * y[i] * (T(1) - y[i]);
      });
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
      });
}

Array softplus(const Array& x) {
  return elementwise(
      x, "softplus", []<typename T>(const T* a, T* y, std::int64_t n) { vsoftplus(a, y, n); },
      []<typename T>(const T* a, const T*, const T* g, T* d, std::int64_t n) {
        T s[kBlock];
        vsigmoid(a, s, n);
        for (std::int64_t i = 0; i < n; ++i) d[i] = g[i] * s[i];
      });
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
          d[i] = z > T(0) && z < T(6) ? g[i] / T(6) : T(0);
        }
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
        for (std::int64_t i = 0; i < n; ++i) d[i] = a[i] > T(1) || a[i] < T(-1) ? T(0) : g[i];
      });
}

}  // namespace loom::nn
