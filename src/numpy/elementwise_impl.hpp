// Private: the machinery every elementwise op shares (src/numpy/elementwise.cpp, unary.cpp,
// logic.cpp): NumPy broadcasting as a strided loop, loom's promotion for binary ops, the unary
// drivers, and the primitive record they bind.
//
// Every binary op goes through `binary()`: promote both operands to a common dtype, compute the
// broadcast shape, run a strided kernel whose inner loop is one of four contiguous/broadcast
// variants (so the compiler vectorizes it), and record the op's VJP next to its kernel.
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"
#include "numpy/vmath.hpp"

namespace loom::numpy::elementwise_impl {

using detail::unbroadcast;

inline std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// ---- the strided broadcasting loop ------------------------------------------------------

// Output shape and per-operand element strides (0 along broadcast dims), with adjacent dims
// merged wherever every operand is contiguous across them. Fixed-size: no allocation per op.
struct BroadcastPlan {
  Shape shape;                                           // coalesced output shape (rank >= 1)
  std::array<std::int64_t, Shape::kMaxRank> sa{}, sb{};  // strides of a and b per coalesced dim
};

inline BroadcastPlan plan_broadcast(const Shape& out, const Shape& a, const Shape& b) {
  BroadcastPlan p;
  if (a == b) {  // the common case: one flat loop
    p.shape.push_back(out.numel());
    p.sa[0] = p.sb[0] = 1;
    return p;
  }
  const int r = out.size();
  std::array<std::int64_t, Shape::kMaxRank> sa{}, sb{};
  auto fill = [&](const Shape& s, std::array<std::int64_t, Shape::kMaxRank>& st) {
    std::int64_t stride = 1;
    for (int i = s.size() - 1, j = r - 1; i >= 0; --i, --j) {
      st[std::size_t(j)] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
  };
  fill(a, sa);
  fill(b, sb);
  int k = -1;
  for (int i = 0; i < r; ++i) {
    const std::int64_t d = out[i];
    const auto ui = std::size_t(i);
    if (d == 1) continue;  // size-1 dims contribute nothing
    if (k >= 0 && p.sa[std::size_t(k)] == sa[ui] * d && p.sb[std::size_t(k)] == sb[ui] * d) {
      p.shape[k] = p.shape[k] * d;
      p.sa[std::size_t(k)] = sa[ui];
      p.sb[std::size_t(k)] = sb[ui];
      continue;
    }
    p.shape.push_back(d);
    ++k;
    p.sa[std::size_t(k)] = sa[ui];
    p.sb[std::size_t(k)] = sb[ui];
  }
  if (p.shape.size() == 0) p.shape.push_back(1);  // strides stay 0
  return p;
}

template <typename T, typename R, typename Op>
inline void inner_loop(const T* a, std::int64_t sa, const T* b, std::int64_t sb, R* out,
                       std::int64_t n, Op op) {
  if (sa == 1 && sb == 1) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
  } else if (sa == 0 && sb == 1) {
    const T x = a[0];
    for (std::int64_t i = 0; i < n; ++i) out[i] = op(x, b[i]);
  } else if (sa == 1 && sb == 0) {
    const T y = b[0];
    for (std::int64_t i = 0; i < n; ++i) out[i] = op(a[i], y);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = op(a[i * sa], b[i * sb]);
  }
}

template <typename T, typename R, typename Op>
void run_binary(const Array& a, const Array& b, Array& out, Op op) {
  const BroadcastPlan p = plan_broadcast(out.shape(), a.shape(), b.shape());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.mutable_data<R>();
  const int r = p.shape.size();
  const std::int64_t inner = p.shape[r - 1];
  const std::int64_t outer = out.size() / (inner == 0 ? 1 : inner);
  if (out.size() == 0) return;
  if (r == 1) {
    detail::parallel_for(inner, [&](std::int64_t begin, std::int64_t end) {
      inner_loop<T, R>(pa + begin * p.sa[0], p.sa[0], pb + begin * p.sb[0], p.sb[0], po + begin,
                       end - begin, op);
    });
    return;
  }
  const std::int64_t grain = std::max<std::int64_t>(1, detail::kParallelGrain / inner);
  detail::parallel_for(
      outer,
      [&](std::int64_t begin, std::int64_t end) {
        // Multi-index of row `begin` over the outer (all but last) coalesced dims.
        std::array<std::int64_t, Shape::kMaxRank> idx{};
        std::int64_t rem = begin, oa = 0, ob = 0;
        for (int d = r - 2; d >= 0; --d) {
          idx[std::size_t(d)] = rem % p.shape[d];
          rem /= p.shape[d];
          oa += idx[std::size_t(d)] * p.sa[std::size_t(d)];
          ob += idx[std::size_t(d)] * p.sb[std::size_t(d)];
        }
        for (std::int64_t row = begin; row < end; ++row) {
          inner_loop<T, R>(pa + oa, p.sa[std::size_t(r - 1)], pb + ob, p.sb[std::size_t(r - 1)],
                           po + row * inner, inner, op);
          for (int d = r - 2; d >= 0; --d) {  // advance the odometer
            const auto ud = std::size_t(d);
            ++idx[ud];
            oa += p.sa[ud];
            ob += p.sb[ud];
            if (idx[ud] < p.shape[d]) break;
            oa -= p.sa[ud] * p.shape[d];
            ob -= p.sb[ud] * p.shape[d];
            idx[ud] = 0;
          }
        }
      },
      grain);
}

// ---- op descriptions ------------------------------------------------------------------------

enum class Kind { arithmetic, true_divide, comparison, logical };

// Promotes a and b to the dtype the op computes in.
inline DType compute_dtype(const Array& a, const Array& b, Kind kind, const char* op) {
  detail::check_valid(a, op);
  detail::check_valid(b, op);
  if (kind == Kind::logical) return DType::bool_;
  DType t;
  try {
    t = promote_types(a.dtype(), b.dtype());
  } catch (const Error&) {
    throw Error(std::string(op) + ": cannot promote " + describe(a) + " and " + describe(b) +
                " without loss (int32 with uint32 would need int64); convert one with astype");
  }
  if (kind == Kind::true_divide && !is_floating(t)) t = DType::float32;
  return t;
}

template <typename Functor>
Array binary(const Array& a0, const Array& b0, Kind kind, const char* op, Functor f) {
  const DType t = compute_dtype(a0, b0, kind, op);
  const Shape shape =
      a0.shape() == b0.shape() ? a0.shape() : broadcast_shapes(a0.shape(), b0.shape(), op);
  // Convert only when needed (astype records its own VJP between floating dtypes).
  Array a_cast, b_cast;
  if (a0.dtype() != t) a_cast = a0.astype(t);
  if (b0.dtype() != t) b_cast = b0.astype(t);
  const Array& a = a_cast.valid() ? a_cast : a0;
  const Array& b = b_cast.valid() ? b_cast : b0;
  const DType out_dtype = (kind == Kind::comparison || kind == Kind::logical) ? DType::bool_ : t;
  Array out = Array::empty(shape, out_dtype);
  detail::dispatch(t, [&]<typename T>() {
    if (out_dtype == DType::bool_) {
      run_binary<T, bool>(a, b, out, [&](T x, T y) -> bool { return f(x, y); });
    } else {
      if constexpr (std::is_same_v<T, bool>) {
        run_binary<T, bool>(a, b, out, [&](T x, T y) -> bool { return f(x, y); });
      } else {
        run_binary<T, T>(a, b, out, [&](T x, T y) -> T { return static_cast<T>(f(x, y)); });
      }
    }
  });
  return out;
}

// Signed integer arithmetic wraps (two's complement, as XLA) instead of overflowing into UB.
template <typename T, typename Op>
inline T wrapping(T x, T y, Op op) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(op(static_cast<U>(x), static_cast<U>(y)));
  } else {
    return static_cast<T>(op(x, y));
  }
}

template <typename T>
inline T nan_max(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (x != x) return x;
    if (y != y) return y;
  }
  return x > y ? x : y;
}
template <typename T>
inline T nan_min(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    if (x != x) return x;
    if (y != y) return y;
  }
  return x < y ? x : y;
}

template <typename T>
T int_power(T base, T exp) {
  if constexpr (std::is_signed_v<T>) {
    if (exp < 0) return base == 1 ? 1 : base == -1 ? (exp % 2 ? -1 : 1) : 0;
  }
  using U = std::make_unsigned_t<T>;  // wrap-around arithmetic without signed overflow UB
  U result = 1, b = static_cast<U>(base);
  for (U e = static_cast<U>(exp); e; e >>= 1) {
    if (e & 1u) result *= b;
    b *= b;
  }
  return static_cast<T>(result);
}

// ---- unary ----------------------------------------------------------------------------------

// `f32_kernel`, when given, replaces fn for float32 arrays: a vectorized array kernel (vmath).
using F32Kernel = void (*)(const float*, float*, std::int64_t);

template <typename FloatFn>
Array unary_float(const Array& x0, const char* op, FloatFn fn, F32Kernel f32_kernel = nullptr) {
  detail::check_valid(x0, op);
  const Array x = is_floating(x0.dtype()) ? x0 : x0.astype(DType::float32);
  Array out = Array::empty(x.shape(), x.dtype());
  detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = out.mutable_data<T>();
    detail::parallel_for(
        x.size(),
        [&](std::int64_t begin, std::int64_t end) {
          if constexpr (std::is_same_v<T, float>) {
            if (f32_kernel != nullptr) {
              f32_kernel(in + begin, o + begin, end - begin);
              return;
            }
          }
          for (std::int64_t i = begin; i < end; ++i) o[i] = fn(in[i]);
        },
        1 << 13);
  });
  return out;
}

// Unary ops that keep integer dtypes (negative, abs, sign, square).
template <typename Fn>
Array unary_same(const Array& x, const char* op, Fn fn) {
  detail::check_valid(x, op);
  if (x.dtype() == DType::bool_ && std::string(op) != "abs" && std::string(op) != "square") {
    throw Error(std::string(op) + ": not defined for bool arrays (got " + describe(x) + ")");
  }
  Array out = Array::empty(x.shape(), x.dtype());
  detail::dispatch(x.dtype(), [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = out.mutable_data<T>();
    detail::parallel_for(x.size(), [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) o[i] = static_cast<T>(fn(in[i]));
    });
  });
  return out;
}

inline std::vector<Array> one(Array g) {
  return {std::move(g)};
}

// ---- primitive records ----------------------------------------------------------------------

using In = std::vector<Array>;
constexpr detail::Batching kElementwise = detail::Batching::elementwise;

// `forward`/`jvp`: the op's forward-mode rule (detail::Forward, detail::JvpRule); an explicit
// rule is a captureless lambda, e.g. exp's `[](const In&, const Array& y, const In& t) {
// return multiply(t[0], y); }`.
constexpr detail::Primitive elementwise_prim(const char* name, bool uses_output = false,
                                             detail::BlockKernel block = {},
                                             detail::Forward forward = detail::Forward::derived,
                                             detail::JvpRule jvp = nullptr) {
  return {.name = name,
          .batching = kElementwise,
          .vjp_uses_output = uses_output,
          .block = block,
          .forward = forward,
          .jvp = jvp};
}
constexpr detail::Forward kLinear = detail::Forward::linear;
constexpr detail::Forward kBilinear = detail::Forward::bilinear;
constexpr detail::Forward kDerived = detail::Forward::derived;

}  // namespace loom::numpy::elementwise_impl

// Overloads taking a C++ scalar on either side: the scalar is weakly typed (weak_scalar).
#define LOOM_SCALAR_BINARY(fn)         \
  Array fn(const Array& a, double b) { \
    return fn(a, weak_scalar(b, a));   \
  }                                    \
  Array fn(double a, const Array& b) { \
    return fn(weak_scalar(a, b), b);   \
  }                                    \
  Array fn(const Array& a, int b) {    \
    return fn(a, weak_scalar(b, a));   \
  }                                    \
  Array fn(int a, const Array& b) {    \
    return fn(weak_scalar(a, b), b);   \
  }
