// Reads tests/data/attention_golden.txt (written by tests/data/attention_golden.py, plain
// NumPy): cases of named float64 arrays, "case <name>", "<k>_shape d...", "<k> v...", "end".
//
//   Array out = loom::testing::golden("dpa_basic", "out");
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/loom.hpp"

namespace loom::testing {

inline const std::map<std::string, std::map<std::string, Array>>& golden_cases() {
  static const auto cases = [] {
    std::map<std::string, std::map<std::string, Array>> out;
    std::ifstream in(std::string(LOOM_TEST_DATA_DIR) + "/attention_golden.txt");
    if (!in) throw std::runtime_error("cannot open attention_golden.txt");
    std::string line, name;
    std::map<std::string, std::vector<std::int64_t>> shapes;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string key;
      ls >> key;
      if (key == "case") {
        ls >> name;
        shapes.clear();
      } else if (key == "end") {
        name.clear();
      } else if (key.size() > 6 && key.compare(key.size() - 6, 6, "_shape") == 0) {
        std::vector<std::int64_t> dims;
        for (std::int64_t d; ls >> d;) dims.push_back(d);
        shapes[key.substr(0, key.size() - 6)] = dims;
      } else if (!key.empty()) {
        std::vector<double> values;
        for (double v; ls >> v;) values.push_back(v);
        out[name][key] = Array(values, Shape(shapes.at(key)), DType::float64);
      }
    }
    return out;
  }();
  return cases;
}

/// The array `field` of case `name`, as float64 (astype for float32 runs).
inline Array golden(const std::string& name, const std::string& field) {
  return golden_cases().at(name).at(field);
}

}  // namespace loom::testing
