// loom::numpy::Axes: the `axis=` argument of reductions (None, an int, or a list of ints).
//
//   jnp::sum(x);            // all axes (axis=None)
//   jnp::sum(x, 1);         // axis=1
//   jnp::sum(x, {0, -1});   // axis=(0, -1)
#pragma once

#include <initializer_list>
#include <optional>
#include <vector>

namespace loom::numpy {

struct Axes {
  Axes() = default;                                 // all axes
  Axes(int axis) : axes(std::vector<int>{axis}) {}  // NOLINT
  Axes(std::initializer_list<int> list) : axes(std::vector<int>(list)) {}
  Axes(std::vector<int> list) : axes(std::move(list)) {}  // NOLINT
  std::optional<std::vector<int>> axes;                   // nullopt: every axis
  bool operator==(const Axes&) const = default;
};

}  // namespace loom::numpy
