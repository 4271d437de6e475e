// Element types of loom::Array and the promotion rules between them.
//
//   loom::DType t = loom::promote_types(loom::DType::int32, loom::DType::float32);  // float32
//   std::cout << loom::dtype_name(t);                                              // "float32"
//
// Promotion table (JAX's lattice with 64-bit types off, except where noted):
//   bool    + X        -> X
//   int32   + int32    -> int32        uint32 + uint32 -> uint32
//   int32   + uint32   -> loom::Error  (JAX would give int64 and then silently truncate to int32
//                                       with x64 off; loom refuses instead of wrapping)
//   int*    + float32  -> float32      int* + float64 -> float64
//   float32 + float64  -> float64
// C++ scalars in operators are "weak" as Python scalars are in JAX: `x * 2.0` keeps x's dtype
// when x is floating, and gives float32 when x is integer or bool; `x + 1` keeps x's dtype
// (bool becomes int32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace loom {

enum class DType : std::uint8_t { bool_, int32, uint32, float32, float64 };
// Room is left for bfloat16/float16 after float64.

std::size_t itemsize(DType dtype);
const char* dtype_name(DType dtype);
bool is_floating(DType dtype);
bool is_integer(DType dtype);  // int32 and uint32 (not bool)
DType promote_types(DType a, DType b);

/// The DType that corresponds to a C++ element type: dtype_of<float>() == DType::float32.
template <typename T>
constexpr DType dtype_of() {
  static_assert(sizeof(T) == 0, "loom arrays hold float, double, int32_t, uint32_t or bool");
  return DType::float32;
}
template <>
constexpr DType dtype_of<float>() {
  return DType::float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::float64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::int32;
}
template <>
constexpr DType dtype_of<std::uint32_t>() {
  return DType::uint32;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::bool_;
}

}  // namespace loom
