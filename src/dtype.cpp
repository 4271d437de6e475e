// DType properties and loom's promotion table (documented in loom/dtype.hpp).
#include "loom/dtype.hpp"

#include <string>

#include "loom/error.hpp"

namespace loom {

std::size_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::bool_:
      return 1;
    case DType::int32:
    case DType::uint32:
    case DType::float32:
      return 4;
    case DType::float64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::bool_:
      return "bool";
    case DType::int32:
      return "int32";
    case DType::uint32:
      return "uint32";
    case DType::float32:
      return "float32";
    case DType::float64:
      return "float64";
  }
  return "?";
}

bool is_floating(DType dtype) {
  return dtype == DType::float32 || dtype == DType::float64;
}
bool is_integer(DType dtype) {
  return dtype == DType::int32 || dtype == DType::uint32;
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::bool_) return b;
  if (b == DType::bool_) return a;
  if (is_floating(a) || is_floating(b)) {
    if (a == DType::float64 || b == DType::float64) return DType::float64;
    return DType::float32;
  }
  // int32 with uint32: no 32-bit type holds both ranges.
  throw Error(std::string("promote_types: cannot promote ") + dtype_name(a) + " and " +
              dtype_name(b) + " without loss (JAX would need int64); convert one with astype");
}

}  // namespace loom
