// Array creation, as jax.numpy: zeros, ones, full, *_like, arange, eye, linspace.
//
//   auto z = jnp::zeros({2, 3});                       // float32
//   auto i = jnp::arange(5);                           // int32 [0 1 2 3 4]
//   auto f = jnp::full({2}, 7.0, loom::DType::float64);
#pragma once

#include <cstdint>

#include "loom/array.hpp"

namespace loom::numpy {

Array zeros(Shape shape, DType dtype = DType::float32);
Array ones(Shape shape, DType dtype = DType::float32);
Array full(Shape shape, double value, DType dtype = DType::float32);
Array zeros_like(const Array& x);
Array ones_like(const Array& x);
Array full_like(const Array& x, double value);
/// [start, stop) with `step`; int32 unless dtype says otherwise. arange(n) = arange(0, n, 1).
Array arange(std::int64_t stop);
Array arange(double start, double stop, double step = 1, DType dtype = DType::int32);
Array linspace(double start, double stop, std::int64_t num, DType dtype = DType::float32);
/// n x m identity (m defaults to n), ones on diagonal k.
Array eye(std::int64_t n, std::int64_t m = -1, std::int64_t k = 0, DType dtype = DType::float32);
/// Like jnp.asarray(x, dtype): a converted copy (or x itself when the dtype matches).
Array asarray(const Array& x, DType dtype);

}  // namespace loom::numpy
