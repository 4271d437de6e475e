// jax.numpy-style array creation.
#include "loom/numpy/creation.hpp"

#include <cmath>
#include <string>
#include <type_traits>

#include "detail/dispatch.hpp"

namespace loom::numpy {
namespace {
// A double converted to T as astype converts (saturating, NaN -> 0 for integers): a plain
// static_cast of an out-of-range float to an integer type is undefined behaviour.
template <typename T>
T to_element(double value) {
  T v;
  if constexpr (std::is_same_v<T, bool>) {
    v = value != 0.0;
  } else {
    detail::convert(&value, DType::float64, &v, dtype_of<T>(), 1);
  }
  return v;
}
}  // namespace

Array full(Shape shape, double value, DType dtype) {
  Array out = Array::empty(shape, dtype);
  detail::dispatch(dtype, [&]<typename T>() {
    T* p = out.mutable_data<T>();
    const T v = to_element<T>(value);
    for (std::int64_t i = 0, n = out.size(); i < n; ++i) p[i] = v;
  });
  return out;
}

Array zeros(Shape shape, DType dtype) {
  return full(shape, 0.0, dtype);
}
Array ones(Shape shape, DType dtype) {
  return full(shape, 1.0, dtype);
}

Array zeros_like(const Array& x) {
  detail::check_valid(x, "zeros_like");
  return zeros(x.shape(), x.dtype());
}
Array ones_like(const Array& x) {
  detail::check_valid(x, "ones_like");
  return ones(x.shape(), x.dtype());
}
Array full_like(const Array& x, double value) {
  detail::check_valid(x, "full_like");
  return full(x.shape(), value, x.dtype());
}

Array arange(std::int64_t stop) {
  return arange(0, static_cast<double>(stop), 1, DType::int32);
}

Array arange(double start, double stop, double step, DType dtype) {
  if (step == 0 || !std::isfinite(step) || !std::isfinite(start) || !std::isfinite(stop)) {
    throw Error("arange: step must be finite and non-zero, start/stop finite (got start=" +
                std::to_string(start) + ", stop=" + std::to_string(stop) +
                ", step=" + std::to_string(step) + ")");
  }
  const double count = std::ceil((stop - start) / step);
  if (!(count < 4.0e18)) {
    throw Error("arange: [" + std::to_string(start) + ", " + std::to_string(stop) + ") with step " +
                std::to_string(step) + " has too many elements");
  }
  const std::int64_t n = count > 0 ? static_cast<std::int64_t>(count) : 0;
  Array out = Array::empty(Shape{n}, dtype);
  detail::dispatch(dtype, [&]<typename T>() {
    T* p = out.mutable_data<T>();
    for (std::int64_t i = 0; i < n; ++i)
      p[i] = to_element<T>(start + static_cast<double>(i) * step);
  });
  return out;
}

Array linspace(double start, double stop, std::int64_t num, DType dtype) {
  if (num < 0) throw Error("linspace: num must be non-negative, got " + std::to_string(num));
  Array out = Array::empty(Shape{num}, dtype);
  detail::dispatch(dtype, [&]<typename T>() {
    T* p = out.mutable_data<T>();
    const double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
    for (std::int64_t i = 0; i < num; ++i) {
      p[i] = to_element<T>(i + 1 == num && num > 1 ? stop : start + static_cast<double>(i) * step);
    }
  });
  return out;
}

Array eye(std::int64_t n, std::int64_t m, std::int64_t k, DType dtype) {
  if (m < 0) m = n;
  if (n < 0) throw Error("eye: n must be non-negative, got " + std::to_string(n));
  Array out = zeros(Shape{n, m}, dtype);
  detail::dispatch(dtype, [&]<typename T>() {
    T* p = out.mutable_data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t j = i + k;
      if (j >= 0 && j < m) p[i * m + j] = T(1);
    }
  });
  return out;
}

Array asarray(const Array& x, DType dtype) {
  detail::check_valid(x, "asarray");
  return x.astype(dtype);
}

}  // namespace loom::numpy
