// The decoded msgpack value before it becomes a Tree: it remembers which leaves were plain
// msgpack numbers (Python ints/floats/bools), which a target-driven restore converts.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

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

/// The key that marks Flax's chunked arrays (flax.serialization._chunk).
inline constexpr const char* kChunkedKey = "__msgpack_chunked_array__";
/// Arrays over this many bytes are chunked on write (set_max_chunk_size changes it for tests).
extern std::size_t g_max_chunk_size;

/// "a/b/c" for error messages.
inline std::string join_path(const std::vector<std::string>& path) {
  std::string s;
  for (const auto& k : path) s += (s.empty() ? "" : "/") + k;
  return s;
}

/// Decodes one msgpack value spanning all of `bytes`; `op` prefixes error messages.
Value decode(std::span<const std::uint8_t> bytes, const char* op);

}  // namespace loom::serialization::detail
