// Elementwise ops: NumPy broadcasting, loom's promotion table, kernels and VJPs in one place.
//
// Every binary op goes through `binary()`: promote both operands to a common dtype, compute the
// broadcast shape, run a strided kernel whose inner loop is one of four contiguous/broadcast
// variants (so the compiler vectorizes it), and record the op's VJP next to its kernel.
#include "loom/numpy/elementwise.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy/creation.hpp"
#include "loom/numpy/manipulation.hpp"
#include "numpy/vmath.hpp"

namespace loom::numpy {
namespace {

using detail::unbroadcast;

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// ---- the strided broadcasting loop ------------------------------------------------------

// Output shape and per-operand element strides (0 along broadcast dims), with adjacent dims
// merged wherever every operand is contiguous across them. Fixed-size: no allocation per op.
struct BroadcastPlan {
  Shape shape;                                           // coalesced output shape (rank >= 1)
  std::array<std::int64_t, Shape::kMaxRank> sa{}, sb{};  // strides of a and b per coalesced dim
};

BroadcastPlan plan_broadcast(const Shape& out, const Shape& a, const Shape& b) {
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
DType compute_dtype(const Array& a, const Array& b, Kind kind, const char* op) {
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

std::vector<Array> one(Array g) {
  return {std::move(g)};
}

// ---- primitive records ----------------------------------------------------------------------

using In = std::vector<Array>;
constexpr detail::Batching kElementwise = detail::Batching::elementwise;

constexpr detail::Primitive elementwise_prim(const char* name, bool uses_output = false,
                                             detail::BlockKernel block = {}) {
  return {.name = name, .batching = kElementwise, .vjp_uses_output = uses_output, .block = block};
}

// ---- jit's float32 block kernels (detail::BlockKernel) ------------------------------------
// Each computes the expression its op's eager kernel computes on float32 (run_binary's
// functor, unary_float's fn or vmath kernel, where's select), so a fused replay rounds as
// eager execution does.
#define LOOM_BLOCK_BINARY(fn, expr)                                   \
  void fn(const float* a, const float* b, float* o, std::int64_t n) { \
    for (std::int64_t i = 0; i < n; ++i) {                            \
      const float x = a[i], y = b[i];                                 \
      o[i] = expr;                                                    \
    }                                                                 \
  }
LOOM_BLOCK_BINARY(add_f32, x + y)
LOOM_BLOCK_BINARY(subtract_f32, x - y)
LOOM_BLOCK_BINARY(multiply_f32, x* y)
LOOM_BLOCK_BINARY(divide_f32, x / y)
LOOM_BLOCK_BINARY(maximum_f32, nan_max(x, y))
LOOM_BLOCK_BINARY(minimum_f32, nan_min(x, y))
#undef LOOM_BLOCK_BINARY

#define LOOM_BLOCK_UNARY(fn, expr)                    \
  void fn(const float* a, float* o, std::int64_t n) { \
    for (std::int64_t i = 0; i < n; ++i) {            \
      const float v = a[i];                           \
      o[i] = expr;                                    \
    }                                                 \
  }
LOOM_BLOCK_UNARY(negative_f32, -v)
LOOM_BLOCK_UNARY(log1p_f32, std::log1p(v))
LOOM_BLOCK_UNARY(expm1_f32, std::expm1(v))
LOOM_BLOCK_UNARY(sqrt_f32, std::sqrt(v))
LOOM_BLOCK_UNARY(rsqrt_f32, 1.0f / std::sqrt(v))
LOOM_BLOCK_UNARY(abs_f32, std::abs(v))
LOOM_BLOCK_UNARY(sin_f32, std::sin(v))
LOOM_BLOCK_UNARY(cos_f32, std::cos(v))
LOOM_BLOCK_UNARY(floor_f32, std::floor(v))
LOOM_BLOCK_UNARY(ceil_f32, std::ceil(v))
#undef LOOM_BLOCK_UNARY

void where_f32(const bool* c, const float* x, const float* y, float* o, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
}

}  // namespace

// ---- binary arithmetic ------------------------------------------------------------------------

Array add(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "add", [](auto x, auto y) {
    return wrapping(x, y, [](auto u, auto v) { return u + v; });
  });
  static constexpr detail::Primitive kAdd = elementwise_prim("add", false, {.binary = add_f32});
  if (detail::transforming())
    detail::bind(
        kAdd, out, {&a, &b}, [](const In& in) { return add(in[0], in[1]); },
        [sa = a.shape(), sb = b.shape()](const Array& g, const Array&) {
          return std::vector<Array>{unbroadcast(g, sa), unbroadcast(g, sb)};
        });
  return out;
}

Array subtract(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "subtract", [](auto x, auto y) {
    return wrapping(x, y, [](auto u, auto v) { return u - v; });
  });
  static constexpr detail::Primitive kSubtract =
      elementwise_prim("subtract", false, {.binary = subtract_f32});
  if (detail::transforming())
    detail::bind(
        kSubtract, out, {&a, &b}, [](const In& in) { return subtract(in[0], in[1]); },
        [sa = a.shape(), sb = b.shape()](const Array& g, const Array&) {
          return std::vector<Array>{unbroadcast(g, sa), unbroadcast(negative(g), sb)};
        });
  return out;
}

Array multiply(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "multiply", [](auto x, auto y) {
    return wrapping(x, y, [](auto u, auto v) { return u * v; });
  });
  static constexpr detail::Primitive kMultiply =
      elementwise_prim("multiply", false, {.binary = multiply_f32});
  if (detail::transforming())
    detail::bind(
        kMultiply, out, {&a, &b}, [](const In& in) { return multiply(in[0], in[1]); },
        [a, b](const Array& g, const Array&) {
          return std::vector<Array>{unbroadcast(multiply(g, b), a.shape()),
                                    unbroadcast(multiply(g, a), b.shape())};
        });
  return out;
}

Array divide(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::true_divide, "divide", [](auto x, auto y) { return x / y; });
  static constexpr detail::Primitive kDivide =
      elementwise_prim("divide", false, {.binary = divide_f32});
  if (detail::transforming())
    detail::bind(
        kDivide, out, {&a, &b}, [](const In& in) { return divide(in[0], in[1]); },
        [a, b](const Array& g, const Array&) {
          Array ga = divide(g, b);
          return std::vector<Array>{unbroadcast(ga, a.shape()),
                                    unbroadcast(negative(multiply(ga, divide(a, b))), b.shape())};
        });
  return out;
}

Array power(const Array& a, const Array& b) {
  Array out = binary(a, b, Kind::arithmetic, "power", [](auto x, auto y) {
    using T = decltype(x);
    if constexpr (std::is_floating_point_v<T>)
      return std::pow(x, y);
    else if constexpr (std::is_same_v<T, bool>)
      return x || !y;
    else
      return int_power(x, y);
  });
  static constexpr detail::Primitive kPower = elementwise_prim("power", /*uses_output=*/true);
  if (detail::transforming())
    detail::bind(
        kPower, out, {&a, &b}, [](const In& in) { return power(in[0], in[1]); },
        [a, b](const Array& g, const Array& o) {
          // d/da a^b = b a^(b-1); d/db a^b = log(a) a^b, with log(a) taken as 0 where a == 0
          // (as JAX). JAX's pow JVP: the base's derivative is 0 where the exponent is 0 (even at
          // a == 0).
          Array da = where(equal(b, zeros_like(b)), zeros_like(b), multiply(b, power(a, b - 1.0)));
          Array safe_log = log(where(equal(a, zeros_like(a)), ones_like(a), a));
          Array db = multiply(safe_log, o);
          return std::vector<Array>{unbroadcast(multiply(g, da), a.shape()),
                                    unbroadcast(multiply(g, db), b.shape())};
        });
  return out;
}

namespace {
// VJP of maximum/minimum: the cotangent goes to the selected operand; ties split it evenly, as
// JAX's balanced_eq does.
std::vector<Array> select_vjp(const Array& g, const Array& a, const Array& b, bool is_max) {
  Array a_wins = is_max ? greater(a, b) : less(a, b);
  Array tie = equal(a, b);
  Array wa = add(a_wins.astype(g.dtype()), tie.astype(g.dtype()) * 0.5);
  Array wb = 1.0 - wa;
  return {unbroadcast(multiply(g, wa), a.shape()), unbroadcast(multiply(g, wb), b.shape())};
}
}  // namespace

Array maximum(const Array& a, const Array& b) {
  Array out =
      binary(a, b, Kind::arithmetic, "maximum", [](auto x, auto y) { return nan_max(x, y); });
  static constexpr detail::Primitive kMaximum =
      elementwise_prim("maximum", false, {.binary = maximum_f32});
  if (detail::transforming())
    detail::bind(
        kMaximum, out, {&a, &b}, [](const In& in) { return maximum(in[0], in[1]); },
        [a, b](const Array& g, const Array&) { return select_vjp(g, a, b, true); });
  return out;
}

Array minimum(const Array& a, const Array& b) {
  Array out =
      binary(a, b, Kind::arithmetic, "minimum", [](auto x, auto y) { return nan_min(x, y); });
  static constexpr detail::Primitive kMinimum =
      elementwise_prim("minimum", false, {.binary = minimum_f32});
  if (detail::transforming())
    detail::bind(
        kMinimum, out, {&a, &b}, [](const In& in) { return minimum(in[0], in[1]); },
        [a, b](const Array& g, const Array&) { return select_vjp(g, a, b, false); });
  return out;
}

// ---- unary --------------------------------------------------------------------------------

Array negative(const Array& x) {
  Array out = unary_same(x, "negative", [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T>)
      return static_cast<T>(0u - v);  // wraps, as NumPy
    else if constexpr (std::is_integral_v<T>) {
      return v == std::numeric_limits<T>::min() ? v : static_cast<T>(-v);  // no overflow UB
    } else
      return -v;
  });
  static constexpr detail::Primitive kNegative =
      elementwise_prim("negative", false, {.unary = negative_f32});
  if (detail::transforming())
    detail::bind(
        kNegative, out, {&x}, [](const In& in) { return negative(in[0]); },
        [](const Array& g, const Array&) { return one(negative(g)); });
  return out;
}

Array exp(const Array& x) {
  Array out = unary_float(
      x, "exp", [](auto v) { return std::exp(v); }, vmath::exp_f32);
  static constexpr detail::Primitive kExp =
      elementwise_prim("exp", true, {.unary = vmath::exp_f32});
  if (detail::transforming())
    detail::bind(
        kExp, out, {&x}, [](const In& in) { return exp(in[0]); },
        [](const Array& g, const Array& y) { return one(multiply(g, y)); });
  return out;
}

Array log(const Array& x) {
  Array out = unary_float(
      x, "log", [](auto v) { return std::log(v); }, vmath::log_f32);
  static constexpr detail::Primitive kLog =
      elementwise_prim("log", false, {.unary = vmath::log_f32});
  if (detail::transforming())
    detail::bind(
        kLog, out, {&x}, [](const In& in) { return log(in[0]); },
        [x](const Array& g, const Array&) { return one(divide(g, x)); });
  return out;
}

Array log1p(const Array& x) {
  Array out = unary_float(x, "log1p", [](auto v) { return std::log1p(v); });
  static constexpr detail::Primitive kLog1p =
      elementwise_prim("log1p", false, {.unary = log1p_f32});
  if (detail::transforming())
    detail::bind(
        kLog1p, out, {&x}, [](const In& in) { return log1p(in[0]); },
        [x](const Array& g, const Array&) { return one(divide(g, x + 1.0)); });
  return out;
}

Array expm1(const Array& x) {
  Array out = unary_float(x, "expm1", [](auto v) { return std::expm1(v); });
  static constexpr detail::Primitive kExpm1 = elementwise_prim("expm1", true, {.unary = expm1_f32});
  if (detail::transforming())
    detail::bind(
        kExpm1, out, {&x}, [](const In& in) { return expm1(in[0]); },
        [](const Array& g, const Array& o) { return one(multiply(g, o + 1.0)); });
  return out;
}

Array sqrt(const Array& x) {
  Array out = unary_float(x, "sqrt", [](auto v) { return std::sqrt(v); });
  static constexpr detail::Primitive kSqrt = elementwise_prim("sqrt", true, {.unary = sqrt_f32});
  if (detail::transforming())
    detail::bind(
        kSqrt, out, {&x}, [](const In& in) { return sqrt(in[0]); },
        [](const Array& g, const Array& o) { return one(divide(g * 0.5, o)); });
  return out;
}

Array rsqrt(const Array& x) {
  Array out = unary_float(x, "rsqrt", [](auto v) {
    using T = decltype(v);
    return T(1) / std::sqrt(v);
  });
  static constexpr detail::Primitive kRsqrt = elementwise_prim("rsqrt", true, {.unary = rsqrt_f32});
  if (detail::transforming())
    detail::bind(
        kRsqrt, out, {&x}, [](const In& in) { return rsqrt(in[0]); },
        [x](const Array& g, const Array& o) { return one(multiply(g, divide(o, x) * -0.5)); });
  return out;
}

Array abs(const Array& x) {
  Array out = unary_same(x, "abs", [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>)
      return v;
    else if constexpr (std::is_integral_v<T>) {
      return v == std::numeric_limits<T>::min() ? v : static_cast<T>(v < 0 ? -v : v);
    } else
      return std::abs(v);
  });
  // JAX's abs JVP: select(x >= 0, g, -g), so grad(abs)(0) == 1.
  static constexpr detail::Primitive kAbs = elementwise_prim("abs", false, {.unary = abs_f32});
  if (detail::transforming())
    detail::bind(
        kAbs, out, {&x}, [](const In& in) { return abs(in[0]); },
        [x](const Array& g, const Array&) {
          return one(where(greater_equal(x, zeros_like(x)), g, negative(g)));
        });
  return out;
}

Array sign(const Array& x) {
  Array out = unary_same(x, "sign", [](auto v) {
    using T = decltype(v);
    if constexpr (std::is_floating_point_v<T>) {
      if (v != v) return v;
    }
    return static_cast<T>((T(0) < v) - (v < T(0)));
  });
  // No VJP: its derivative is zero almost everywhere (JAX gives zeros).
  static constexpr detail::Primitive kSign = elementwise_prim("sign");
  if (detail::transforming())
    detail::bind(
        kSign, out, {&x}, [](const In& in) { return sign(in[0]); }, nullptr);
  return out;
}

Array tanh(const Array& x) {
  Array out = unary_float(
      x, "tanh", [](auto v) { return std::tanh(v); }, vmath::tanh_f32);
  static constexpr detail::Primitive kTanh =
      elementwise_prim("tanh", true, {.unary = vmath::tanh_f32});
  if (detail::transforming())
    detail::bind(
        kTanh, out, {&x}, [](const In& in) { return tanh(in[0]); },
        [](const Array& g, const Array& o) { return one(multiply(g, 1.0 - multiply(o, o))); });
  return out;
}

Array sin(const Array& x) {
  Array out = unary_float(x, "sin", [](auto v) { return std::sin(v); });
  static constexpr detail::Primitive kSin = elementwise_prim("sin", false, {.unary = sin_f32});
  if (detail::transforming())
    detail::bind(
        kSin, out, {&x}, [](const In& in) { return sin(in[0]); },
        [x](const Array& g, const Array&) { return one(multiply(g, cos(x))); });
  return out;
}

Array cos(const Array& x) {
  Array out = unary_float(x, "cos", [](auto v) { return std::cos(v); });
  static constexpr detail::Primitive kCos = elementwise_prim("cos", false, {.unary = cos_f32});
  if (detail::transforming())
    detail::bind(
        kCos, out, {&x}, [](const In& in) { return cos(in[0]); },
        [x](const Array& g, const Array&) { return one(negative(multiply(g, sin(x)))); });
  return out;
}

Array square(const Array& x) {
  return multiply(x, x);
}

Array reciprocal(const Array& x) {
  detail::check_valid(x, "reciprocal");
  return divide(weak_scalar(1.0, x), x);
}

Array floor(const Array& x) {
  detail::check_valid(x, "floor");
  if (!is_floating(x.dtype())) return x;
  Array out = unary_float(x, "floor", [](auto v) { return std::floor(v); });
  static constexpr detail::Primitive kFloor =
      elementwise_prim("floor", false, {.unary = floor_f32});  // zero gradient
  if (detail::transforming())
    detail::bind(
        kFloor, out, {&x}, [](const In& in) { return floor(in[0]); }, nullptr);
  return out;
}

Array ceil(const Array& x) {
  detail::check_valid(x, "ceil");
  if (!is_floating(x.dtype())) return x;
  Array out = unary_float(x, "ceil", [](auto v) { return std::ceil(v); });
  static constexpr detail::Primitive kCeil =
      elementwise_prim("ceil", false, {.unary = ceil_f32});  // zero gradient
  if (detail::transforming())
    detail::bind(
        kCeil, out, {&x}, [](const In& in) { return ceil(in[0]); }, nullptr);
  return out;
}

// ---- comparisons and logic (bool results, not differentiated) -----------------------------

// Bound with no VJP: jit and vmap see them, autodiff treats their results as constants.
// Comparisons of float32 operands fuse under jit (their block kernel writes bools).
#define LOOM_BOOL_BINARY(fn, kind, expr)                                                 \
  namespace {                                                                            \
  void fn##_f32(const float* a, const float* b, bool* o, std::int64_t n) {               \
    for (std::int64_t i = 0; i < n; ++i) {                                               \
      const float x = a[i], y = b[i];                                                    \
      o[i] = expr;                                                                       \
    }                                                                                    \
  }                                                                                      \
  }                                                                                      \
  Array fn(const Array& a, const Array& b) {                                             \
    Array out = binary(a, b, Kind::kind, #fn, [](auto x, auto y) { return expr; });      \
    static constexpr detail::Primitive kPrim = elementwise_prim(                         \
        #fn, false, {.compare = Kind::kind == Kind::comparison ? fn##_f32 : nullptr});   \
    if (detail::transforming())                                                          \
      detail::bind(                                                                      \
          kPrim, out, {&a, &b}, [](const In& in) { return fn(in[0], in[1]); }, nullptr); \
    return out;                                                                          \
  }
LOOM_BOOL_BINARY(equal, comparison, x == y)
LOOM_BOOL_BINARY(not_equal, comparison, x != y)
LOOM_BOOL_BINARY(less, comparison, x < y)
LOOM_BOOL_BINARY(less_equal, comparison, x <= y)
LOOM_BOOL_BINARY(greater, comparison, x > y)
LOOM_BOOL_BINARY(greater_equal, comparison, x >= y)
LOOM_BOOL_BINARY(logical_and, logical, x&& y)
LOOM_BOOL_BINARY(logical_or, logical, x || y)
#undef LOOM_BOOL_BINARY

Array logical_not(const Array& x) {
  detail::check_valid(x, "logical_not");
  return equal(x.astype(DType::bool_), Array::scalar(false));
}

Array isnan(const Array& x) {
  detail::check_valid(x, "isnan");
  return not_equal(x, x);
}

Array isfinite(const Array& x) {
  detail::check_valid(x, "isfinite");
  if (!is_floating(x.dtype())) return full(x.shape(), 1, DType::bool_);
  Array out = Array::empty(x.shape(), DType::bool_);
  detail::dispatch_float(x.dtype(), "isfinite", [&]<typename T>() {
    const T* in = x.data<T>();
    bool* o = out.mutable_data<bool>();
    for (std::int64_t i = 0, n = x.size(); i < n; ++i) o[i] = std::isfinite(in[i]);
  });
  static constexpr detail::Primitive kIsfinite = elementwise_prim("isfinite");
  if (detail::transforming())
    detail::bind(
        kIsfinite, out, {&x}, [](const In& in) { return isfinite(in[0]); }, nullptr);
  return out;
}

// ---- selection --------------------------------------------------------------------------------

namespace {
// An operand of where() read as a flat array of the output's size: stride 1 when it already has
// the output's shape, stride 0 when it holds one element (the common scalar case, e.g. Dropout's
// zeros), otherwise materialized with broadcast_to.
Array flat_operand(const Array& a, const Shape& shape, std::int64_t& stride) {
  if (a.shape() == shape) {
    stride = 1;
    return a;
  }
  if (a.size() == 1) {
    stride = 0;
    return a;
  }
  stride = 1;
  return broadcast_to(a.detached(), shape);
}

// The cotangent of a `dtype` operand that was promoted to g's dtype: converted back, as the
// VJP of the promotion (astype between floating dtypes) does.
Array cast_back(const Array& g, DType dtype) {
  return is_floating(dtype) && dtype != g.dtype() ? g.astype(dtype) : g;
}
}  // namespace

Array where(const Array& cond0, const Array& x0, const Array& y0) {
  detail::check_valid(cond0, "where");
  const DType t = compute_dtype(x0, y0, Kind::arithmetic, "where");
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond0.shape(), x0.shape(), "where"), y0.shape(), "where");
  const Array c = cond0.astype(DType::bool_);
  const Array x = x0.astype(t), y = y0.astype(t);
  Array out = Array::empty(shape, t);
  std::int64_t sc = 0, sx = 0, sy = 0;
  const Array cf = flat_operand(c, shape, sc), xf = flat_operand(x, shape, sx),
              yf = flat_operand(y, shape, sy);
  detail::dispatch(t, [&]<typename T>() {
    const bool* pc = cf.data<bool>();
    const T* px = xf.data<T>();
    const T* py = yf.data<T>();
    T* po = out.mutable_data<T>();
    detail::parallel_for(out.size(), [&](std::int64_t begin, std::int64_t end) {
      if (sc == 1 && sx == 1 && sy == 1) {
        for (std::int64_t i = begin; i < end; ++i) po[i] = pc[i] ? px[i] : py[i];
      } else {
        for (std::int64_t i = begin; i < end; ++i) po[i] = pc[i * sc] ? px[i * sx] : py[i * sy];
      }
    });
  });
  static constexpr detail::Primitive kWhere =
      elementwise_prim("where", false, {.select = where_f32});
  if (detail::transforming())
    detail::bind(
        kWhere, out, {&cond0, &x0, &y0}, [](const In& in) { return where(in[0], in[1], in[2]); },
        [c, sx = x0.shape(), sy = y0.shape(), tx = x0.dtype(), ty = y0.dtype()](const Array& g,
                                                                                const Array&) {
          const Array z = zeros(Shape{}, g.dtype());
          return std::vector<Array>{Array(), cast_back(unbroadcast(where(c, g, z), sx), tx),
                                    cast_back(unbroadcast(where(c, z, g), sy), ty)};
        });
  return out;
}

Array clip(const Array& x, double lo, double hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}

Array clip(const Array& x, const Array& lo, const Array& hi) {
  return minimum(maximum(x, lo), hi);
}

Array weak_scalar(double value, const Array& like) {
  detail::check_valid(like, "weak_scalar");
  const DType t = is_floating(like.dtype()) ? like.dtype() : DType::float32;
  return full(Shape{}, value, t);
}

Array weak_scalar(int value, const Array& like) {
  detail::check_valid(like, "weak_scalar");
  const DType t = like.dtype() == DType::bool_ ? DType::int32 : like.dtype();
  if (t == DType::uint32 && value < 0) {
    throw Error("weak_scalar: the negative scalar " + std::to_string(value) +
                " cannot combine with a uint32 array without wrapping");
  }
  return full(Shape{}, value, t);
}

// ---- C++ scalars on either side (weakly typed) ----------------------------------------------

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
LOOM_SCALAR_BINARY(add)
LOOM_SCALAR_BINARY(subtract)
LOOM_SCALAR_BINARY(multiply)
LOOM_SCALAR_BINARY(divide)
LOOM_SCALAR_BINARY(power)
LOOM_SCALAR_BINARY(maximum)
LOOM_SCALAR_BINARY(minimum)
LOOM_SCALAR_BINARY(equal)
LOOM_SCALAR_BINARY(not_equal)
LOOM_SCALAR_BINARY(less)
LOOM_SCALAR_BINARY(less_equal)
LOOM_SCALAR_BINARY(greater)
LOOM_SCALAR_BINARY(greater_equal)
LOOM_SCALAR_BINARY(logical_and)
LOOM_SCALAR_BINARY(logical_or)
#undef LOOM_SCALAR_BINARY

Array where(const Array& cond, const Array& x, double y) {
  return where(cond, x, weak_scalar(y, x));
}
Array where(const Array& cond, double x, const Array& y) {
  return where(cond, weak_scalar(x, y), y);
}
Array where(const Array& cond, const Array& x, int y) {
  return where(cond, x, weak_scalar(y, x));
}
Array where(const Array& cond, int x, const Array& y) {
  return where(cond, weak_scalar(x, y), y);
}
Array where(const Array& cond, double x, double y) {
  return where(cond, full(Shape{}, x, DType::float32), full(Shape{}, y, DType::float32));
}
Array where(const Array& cond, int x, int y) {
  return where(cond, full(Shape{}, x, DType::int32), full(Shape{}, y, DType::int32));
}

Array where(const Array& cond, int x, double y) {
  return where(cond, double(x), y);
}
Array where(const Array& cond, double x, int y) {
  return where(cond, x, double(y));
}

Array clip(const Array& x, int lo, int hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}
Array clip(const Array& x, int lo, double hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}
Array clip(const Array& x, double lo, int hi) {
  detail::check_valid(x, "clip");
  return minimum(maximum(x, weak_scalar(lo, x)), weak_scalar(hi, x));
}

}  // namespace loom::numpy

// ---- operators --------------------------------------------------------------------------------

namespace loom {
namespace jnp = numpy;

Array operator+(const Array& a, const Array& b) {
  return jnp::add(a, b);
}
Array operator-(const Array& a, const Array& b) {
  return jnp::subtract(a, b);
}
Array operator*(const Array& a, const Array& b) {
  return jnp::multiply(a, b);
}
Array operator/(const Array& a, const Array& b) {
  return jnp::divide(a, b);
}
Array operator-(const Array& x) {
  return jnp::negative(x);
}
Array operator==(const Array& a, const Array& b) {
  return jnp::equal(a, b);
}
Array operator!=(const Array& a, const Array& b) {
  return jnp::not_equal(a, b);
}
Array operator<(const Array& a, const Array& b) {
  return jnp::less(a, b);
}
Array operator<=(const Array& a, const Array& b) {
  return jnp::less_equal(a, b);
}
Array operator>(const Array& a, const Array& b) {
  return jnp::greater(a, b);
}
Array operator>=(const Array& a, const Array& b) {
  return jnp::greater_equal(a, b);
}
Array operator&&(const Array& a, const Array& b) {
  return jnp::logical_and(a, b);
}
Array operator||(const Array& a, const Array& b) {
  return jnp::logical_or(a, b);
}
Array operator!(const Array& x) {
  return jnp::logical_not(x);
}

// The scalar overloads of the jnp functions (above) already wrap the scalar weakly.
#define LOOM_SCALAR_OPERATOR(op, fn)            \
  Array operator op(const Array& a, double b) { \
    return jnp::fn(a, b);                       \
  }                                             \
  Array operator op(double a, const Array& b) { \
    return jnp::fn(a, b);                       \
  }                                             \
  Array operator op(const Array& a, int b) {    \
    return jnp::fn(a, b);                       \
  }                                             \
  Array operator op(int a, const Array& b) {    \
    return jnp::fn(a, b);                       \
  }
LOOM_SCALAR_OPERATOR(+, add)
LOOM_SCALAR_OPERATOR(-, subtract)
LOOM_SCALAR_OPERATOR(*, multiply)
LOOM_SCALAR_OPERATOR(/, divide)
LOOM_SCALAR_OPERATOR(==, equal)
LOOM_SCALAR_OPERATOR(!=, not_equal)
LOOM_SCALAR_OPERATOR(<, less)
LOOM_SCALAR_OPERATOR(<=, less_equal)
LOOM_SCALAR_OPERATOR(>, greater)
LOOM_SCALAR_OPERATOR(>=, greater_equal)
#undef LOOM_SCALAR_OPERATOR

}  // namespace loom
