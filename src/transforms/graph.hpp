// Private: the captured graph of loom::jit / loom::vmap (see loom/jit.hpp, detail::capture).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "detail/primitive.hpp"
#include "loom/array.hpp"
#include "loom/jit.hpp"

namespace loom::detail {

/// Where a node input or a graph output comes from.
struct ValueRef {
  enum class Kind : std::uint8_t { none, arg, constant, node };
  Kind kind = Kind::none;  // none: the op was given an empty Array
  std::int32_t index = 0;
};

struct GraphNode {
  Primitive prim;
  Impl impl;
  std::vector<ValueRef> inputs;
  Shape shape;  // of the output recorded while tracing
  DType dtype = DType::float32;
  std::vector<std::int32_t> release;  // nodes whose last use is this one (freed after it)
};

struct Graph {
  std::vector<Shape> arg_shapes;
  std::vector<DType> arg_dtypes;
  std::vector<Array> constants;
  std::vector<GraphNode> nodes;  // in execution order; only those the outputs need
  std::vector<ValueRef> outputs;
  std::size_t peak_live_bytes = 0;
};

/// "float32(2, 3)", for error messages.
std::string describe_value(const Array& a);

}  // namespace loom::detail
