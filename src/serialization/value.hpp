// The decoded msgpack value before it becomes a Tree: it remembers which leaves were plain
// msgpack numbers (Python ints/floats/bools), which a target-driven restore converts.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "loom/array.hpp"

namespace loom::serialization::detail {

struct Value {
  enum class Kind { dict, array, integer, floating, boolean };
  Kind kind = Kind::dict;
  std::map<std::string, Value> dict;
  Array array;
  std::int64_t i = 0;
  double f = 0;
  bool b = false;
};

/// Decodes one msgpack value spanning all of `bytes`; `op` prefixes error messages.
Value decode(std::span<const std::uint8_t> bytes, const char* op);

}  // namespace loom::serialization::detail
