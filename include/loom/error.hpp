// loom::Error: the one exception type loom throws for bad input.
//
// Every message names the operation, the shapes/dtypes involved and what was expected, e.g.
//   loom::Error: add: shapes (2, 3) and (4,) cannot be broadcast together
//
//   try { jnp::reshape(x, {7}); } catch (const loom::Error& e) { std::cerr << e.what(); }
#pragma once

#include <stdexcept>
#include <string>

namespace loom {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace loom
