// Reader for tests/data/conv_golden.txt (written by tests/data/conv_golden.py): one "case NAME"
// block per fixture, each line "key value...". Shared by conv_test.cpp and pooling_test.cpp.
#pragma once

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace loom::testing {

using GoldenCase = std::map<std::string, std::vector<std::string>>;

inline const std::map<std::string, GoldenCase>& conv_golden() {
  static const std::map<std::string, GoldenCase> cases = read_fixture_cases("conv_golden.txt");
  return cases;
}

/// The names of every case starting with `prefix`.
inline std::vector<std::string> golden_names(const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& [name, c] : conv_golden()) {
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  return names;
}

inline std::vector<std::int64_t> golden_ints(const GoldenCase& c, const std::string& key) {
  std::vector<std::int64_t> v;
  for (const auto& t : c.at(key)) v.push_back(std::stoll(t));
  return v;
}

inline Array golden_array(const GoldenCase& c, const std::string& key, DType dtype) {
  std::vector<double> v;
  for (const auto& t : c.at(key))
    v.push_back(t == "inf" ? INFINITY : t == "-inf" ? -INFINITY : std::stod(t));
  return Array(v, Shape(golden_ints(c, key + "_shape")), dtype);
}

/// "SAME" | "int 1" | "pairs 1 1 0 2" as an nn::PaddingLike.
inline nn::PaddingLike golden_padding(const GoldenCase& c) {
  const auto& t = c.at("padding");
  if (t[0] == "int") return nn::PaddingLike(std::int64_t(std::stoll(t[1])));
  if (t[0] == "pairs") {
    std::vector<nn::PadPair> pairs;
    for (std::size_t i = 1; i + 1 < t.size(); i += 2)
      pairs.emplace_back(std::stoll(t[i]), std::stoll(t[i + 1]));
    return nn::PaddingLike(pairs);
  }
  return nn::PaddingLike(t[0]);
}

}  // namespace loom::testing
