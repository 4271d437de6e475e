// Array creation, as jax.numpy: zeros, ones, full, *_like, arange, eye, linspace.
//
//   auto z = jnp::zeros({2, 3});                       // float32
//   auto i = jnp::arange(5);                           // int32 [0 1 2 3 4]
//   auto f = jnp::full({2}, 7.0, loom::DType::float64);
#pragma once

#include <cstdint>

#include "loom/array.hpp"

namespace loom::numpy {

/// An array of zeros.                    jnp::zeros({2, 3})  -> float32 (2, 3)
Array zeros(Shape shape, DType dtype = DType::float32);
/// An array of ones.                     jnp::ones({4}, loom::DType::int32)
Array ones(Shape shape, DType dtype = DType::float32);
/// Every element `value`, converted to dtype as astype converts (integers saturate, NaN -> 0).
///   jnp::full({2, 2}, 0.5)
Array full(Shape shape, double value, DType dtype = DType::float32);
/// Zeros / ones / `value` with x's shape and dtype.   jnp::zeros_like(x)
Array zeros_like(const Array& x);
Array ones_like(const Array& x);
Array full_like(const Array& x, double value);
/// [0, stop) as int32.                    jnp::arange(5) -> [0, 1, 2, 3, 4]
Array arange(std::int64_t stop);
/// [start, stop) with `step` (not 0), int32 unless dtype says otherwise.
///   jnp::arange(0, 1, 0.25, loom::DType::float32) -> [0, 0.25, 0.5, 0.75]
Array arange(double start, double stop, double step = 1, DType dtype = DType::int32);
/// `num` evenly spaced values from start to stop inclusive.   jnp::linspace(0, 1, 5)
Array linspace(double start, double stop, std::int64_t num, DType dtype = DType::float32);
/// n x m (m defaults to n) with ones on diagonal k.   jnp::eye(3); jnp::eye(2, 3, 1)
Array eye(std::int64_t n, std::int64_t m = -1, std::int64_t k = 0, DType dtype = DType::float32);
/// Like jnp.asarray(x, dtype): a converted copy (or x itself when the dtype matches).
///   jnp::asarray(ints, loom::DType::float32)
Array asarray(const Array& x, DType dtype);

}  // namespace loom::numpy
