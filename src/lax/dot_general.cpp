// lax.dot_general: validation and labels; the contraction engine does the work and the VJP.
#include <algorithm>
#include <string>

#include "detail/dispatch.hpp"
#include "lax/contract.hpp"
#include "loom/lax.hpp"

namespace loom::lax {

namespace {

std::string list_str(const std::vector<int>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() == 1) s += ",";
  return s + ")";
}

}  // namespace

Array dot_general(const Array& lhs0, const Array& rhs0, const DotDimensionNumbers& dims) {
  detail::check_valid(lhs0, "dot_general");
  detail::check_valid(rhs0, "dot_general");
  const std::string where = "dot_general: lhs " + detail::describe(lhs0) + ", rhs " +
                            detail::describe(rhs0) + ", contracting " +
                            list_str(dims.lhs_contracting) + "/" + list_str(dims.rhs_contracting) +
                            ", batch " + list_str(dims.lhs_batch) + "/" + list_str(dims.rhs_batch);
  if (dims.lhs_contracting.size() != dims.rhs_contracting.size() ||
      dims.lhs_batch.size() != dims.rhs_batch.size()) {
    throw Error(where + ": lhs and rhs must name equally many contracting and batch dimensions");
  }
  const DType dt = detail::promote_for("dot_general", lhs0, rhs0);
  const Array lhs = lhs0.astype(dt), rhs = rhs0.astype(dt);
  std::vector<int> ll(static_cast<std::size_t>(lhs.ndim()), -2);
  std::vector<int> lr(static_cast<std::size_t>(rhs.ndim()), -2);
  int next = 0;
  auto claim = [&](std::vector<int>& l, int axis, int label, const char* side) {
    if (axis < 0 || axis >= static_cast<int>(l.size())) {
      throw Error(where + ": " + side + " dimension " + std::to_string(axis) +
                  " is out of range for rank " + std::to_string(l.size()));
    }
    if (l[static_cast<std::size_t>(axis)] != -2) {
      throw Error(where + ": " + side + " dimension " + std::to_string(axis) +
                  " is named more than once");
    }
    l[static_cast<std::size_t>(axis)] = label;
  };
  std::vector<int> lc;
  Shape c_shape;
  for (std::size_t i = 0; i < dims.lhs_batch.size(); ++i) {
    claim(ll, dims.lhs_batch[i], next, "lhs");
    claim(lr, dims.rhs_batch[i], next, "rhs");
    const std::int64_t a = lhs.shape()[dims.lhs_batch[i]], b = rhs.shape()[dims.rhs_batch[i]];
    if (a != b) {
      throw Error(where + ": batch dimensions have sizes " + std::to_string(a) + " and " +
                  std::to_string(b) + " (they must be equal)");
    }
    lc.push_back(next++);
    c_shape.push_back(a);
  }
  for (std::size_t i = 0; i < dims.lhs_contracting.size(); ++i) {
    claim(ll, dims.lhs_contracting[i], next, "lhs");
    claim(lr, dims.rhs_contracting[i], next, "rhs");
    const std::int64_t a = lhs.shape()[dims.lhs_contracting[i]];
    const std::int64_t b = rhs.shape()[dims.rhs_contracting[i]];
    if (a != b) {
      throw Error(where + ": contracting dimensions have sizes " + std::to_string(a) + " and " +
                  std::to_string(b) + " (they must be equal)");
    }
    ++next;
  }
  // Free dimensions: lhs's in order, then rhs's.
  for (int i = 0; i < lhs.ndim(); ++i) {
    if (ll[static_cast<std::size_t>(i)] != -2) continue;
    ll[static_cast<std::size_t>(i)] = next;
    lc.push_back(next++);
    c_shape.push_back(lhs.shape()[i]);
  }
  for (int i = 0; i < rhs.ndim(); ++i) {
    if (lr[static_cast<std::size_t>(i)] != -2) continue;
    lr[static_cast<std::size_t>(i)] = next;
    lc.push_back(next++);
    c_shape.push_back(rhs.shape()[i]);
  }
  return detail::contract(lhs, ll, rhs, lr, lc, c_shape);
}

}  // namespace loom::lax
