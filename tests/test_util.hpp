// Shared test helpers: finite-difference gradient checks (float64) and array comparison.
//
//   EXPECT_GRAD_MATCHES_FD([](const Array& x) { return jnp::sum(jnp::tanh(x)); }, x64);
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/loom.hpp"

namespace loom::testing {

/// Fixture files written by the scripts in tests/data/: blocks "case NAME", then lines
/// "key token...", then "end". Returns {case: {key: tokens}}.
inline std::map<std::string, std::map<std::string, std::vector<std::string>>> read_fixture_cases(
    const std::string& file) {
  std::map<std::string, std::map<std::string, std::vector<std::string>>> out;
  std::ifstream in(std::string(LOOM_TEST_DATA_DIR) + "/" + file);
  if (!in) throw std::runtime_error("cannot open tests/data/" + file);
  std::string line, current;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string key;
    ss >> key;
    if (key == "case") {
      ss >> current;
      continue;
    }
    if (key == "end" || key.empty()) continue;
    std::vector<std::string> tokens;
    for (std::string t; ss >> t;) tokens.push_back(t);
    out[current][key] = tokens;
  }
  return out;
}

/// A float64 array from flat values (test inputs).
inline Array f64(std::vector<double> values, Shape shape) {
  return Array(values, shape, DType::float64);
}

/// Deterministic, non-uniform test inputs: sin(0.37 i + phase). Inputs only, never expected values.
inline Array wave(Shape shape, double phase, DType dtype = DType::float64) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * double(i) + phase);
  return Array(v, shape, dtype);
}

/// Central finite differences of a scalar function at x (float64), step h.
inline std::vector<double> finite_difference_grad(const std::function<Array(const Array&)>& f,
                                                  const Array& x, double h = 1e-6) {
  std::vector<double> base = x.to_vector<double>();
  std::vector<double> g(base.size());
  for (std::size_t i = 0; i < base.size(); ++i) {
    std::vector<double> plus = base, minus = base;
    plus[i] += h;
    minus[i] -= h;
    const double fp = f(Array(plus, x.shape(), DType::float64)).item<double>();
    const double fm = f(Array(minus, x.shape(), DType::float64)).item<double>();
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/// Checks loom::grad(f)(x) against central finite differences; x must be float64.
inline ::testing::AssertionResult grad_matches_fd(const std::function<Array(const Array&)>& f,
                                                  const Array& x, double tol = 1e-6) {
  if (x.dtype() != DType::float64) return ::testing::AssertionFailure() << "x must be float64";
  Array g = grad(f)(x);
  if (g.shape() != x.shape() || g.dtype() != x.dtype()) {
    return ::testing::AssertionFailure()
           << "gradient has shape " << g.shape().str() << " dtype " << dtype_name(g.dtype())
           << ", expected " << x.shape().str();
  }
  std::vector<double> analytic = g.to_vector<double>();
  std::vector<double> numeric = finite_difference_grad(f, x);
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    const double err = std::abs(analytic[i] - numeric[i]);
    if (err > tol * (1 + std::abs(numeric[i]))) {
      return ::testing::AssertionFailure() << "element " << i << ": autodiff " << analytic[i]
                                           << " vs finite difference " << numeric[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Elementwise |a - b| <= atol + rtol * |b|, with matching shapes.
inline ::testing::AssertionResult allclose(const Array& a, const Array& b, double rtol = 1e-6,
                                           double atol = 1e-6) {
  if (a.shape() != b.shape()) {
    return ::testing::AssertionFailure()
           << "shapes differ: " << a.shape().str() << " vs " << b.shape().str();
  }
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) && std::isnan(vb[i])) continue;
    if (!(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]))) {
      return ::testing::AssertionFailure() << "element " << i << ": " << va[i] << " vs " << vb[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Runs f and checks it throws loom::Error whose message contains every fragment.
template <typename F>
::testing::AssertionResult throws_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments) {
      if (msg.find(frag) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "message \"" << msg << "\" lacks \"" << frag << "\"";
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-loom exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace loom::testing
