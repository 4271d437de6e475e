// Helpers shared by the jit tests (jit_fusion_test, jit_arena_test): bit-for-bit and
// float32-rounding comparisons of arrays and trees, and seeded normal inputs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "loom/loom.hpp"

namespace loom::testing {

inline ::testing::AssertionResult same_bits(const loom::Array& a, const loom::Array& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    return ::testing::AssertionFailure()
           << "shape/dtype " << a.shape().str() << " vs " << b.shape().str();
  if (std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) != 0)
    return ::testing::AssertionFailure() << "bits differ, shape " << a.shape().str();
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult same_bits(const loom::Tree& a, const loom::Tree& b) {
  if (!loom::same_structure(a, b)) return ::testing::AssertionFailure() << "structures differ";
  auto la = loom::tree_leaves_with_path(a);
  auto lb = loom::tree_leaves(b);
  for (std::size_t i = 0; i < la.size(); ++i) {
    auto r = same_bits(la[i].second, lb[i]);
    if (!r) {
      std::string where;
      for (const auto& k : la[i].first) where += "/" + k;
      return r << " at " << where;
    }
  }
  return ::testing::AssertionSuccess();
}
// Float32 rounding (the documented composite-backward exception of loom/jit.hpp).
inline bool near(const loom::Tree& a, const loom::Tree& b) {
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  if (la.size() != lb.size()) return false;
  for (std::size_t i = 0; i < la.size(); ++i) {
    auto va = la[i].astype(loom::DType::float64).to_vector<double>();
    auto vb = lb[i].astype(loom::DType::float64).to_vector<double>();
    for (std::size_t k = 0; k < va.size(); ++k)
      if (!(std::abs(va[k] - vb[k]) <= 1e-6 + 1e-5 * std::abs(vb[k]))) return false;
  }
  return true;
}

inline loom::Array normal(int seed, loom::Shape shape) {
  return loom::random::normal(loom::random::key(seed), shape);
}

}  // namespace loom::testing
