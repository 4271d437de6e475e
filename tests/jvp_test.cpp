// Forward mode (loom::jvp, loom::linearize) for every differentiable primitive of
// tests/op_list.hpp and tests/op_list_lax_nn.hpp: against central finite differences in float64
// (the independent reference) and against reverse mode through the transpose identity
// <ct, J t> == <J^T ct, t>. Plus jvp's argument checks and linearize's reuse.
#include <gtest/gtest.h>

#include <cctype>

#include "loom/loom.hpp"
#include "op_list.hpp"
#include "test_util.hpp"
#if __has_include("op_list_lax_nn.hpp")
#include "op_list_lax_nn.hpp"
#define LOOM_HAVE_LAX_NN_OP_CASES 1
#endif

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::f64;
using loom::testing::OpCase;
using loom::testing::throws_error;
using loom::testing::wave;
namespace jnp = loom::numpy;

namespace {

std::vector<OpCase> differentiable_cases() {
  std::vector<OpCase> all = loom::testing::numpy_op_cases();
#ifdef LOOM_HAVE_LAX_NN_OP_CASES
  for (OpCase& c : loom::testing::lax_nn_op_cases()) all.push_back(std::move(c));
#endif
  std::vector<OpCase> out;
  for (OpCase& c : all)
    if (c.differentiable) out.push_back(std::move(c));
  return out;
}

// The case as a function of its floating inputs only (the others stay fixed), over a Tree
// whose keys sort in input order.
struct FloatView {
  OpCase c;
  std::vector<std::size_t> floating;  // indices of c.inputs that are differentiated

  explicit FloatView(OpCase oc) : c(std::move(oc)) {
    for (std::size_t i = 0; i < c.inputs.size(); ++i)
      if (loom::is_floating(c.inputs[i].dtype())) floating.push_back(i);
  }
  static std::string key(std::size_t i) { return std::string(1, char('a' + i)); }
  Tree primals() const {
    Tree t = Tree(Tree::Dict{});
    for (std::size_t k = 0; k < floating.size(); ++k) t.set(key(k), c.inputs[floating[k]]);
    return t;
  }
  // Deterministic tangents, a different wave per input (inputs only, never expected values).
  Tree tangents(double phase) const {
    Tree t = Tree(Tree::Dict{});
    for (std::size_t k = 0; k < floating.size(); ++k) {
      const Array& p = c.inputs[floating[k]];
      t.set(key(k), wave(p.shape(), phase + 0.7 * double(k), p.dtype()));
    }
    return t;
  }
  Array operator()(const Tree& x) const {
    std::vector<Array> in = c.inputs;
    for (std::size_t k = 0; k < floating.size(); ++k) in[floating[k]] = x.at(key(k)).leaf();
    return c.fn(in);
  }
};

double vdot(const Array& a, const Array& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double s = 0;
  for (std::size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

double vdot(const Tree& a, const Tree& b) {
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  double s = 0;
  for (std::size_t i = 0; i < la.size(); ++i) s += vdot(la[i], lb[i]);
  return s;
}

class JvpOp : public ::testing::TestWithParam<OpCase> {};

TEST_P(JvpOp, MatchesFiniteDifferences) {
  FloatView f(GetParam());
  ASSERT_FALSE(f.floating.empty()) << "a differentiable case without floating inputs";
  Tree x = f.primals();
  Tree t = f.tangents(0.3);
  auto [y, y_dot] = loom::jvp(f, x, t);
  Array y_ref = f(x);
  ASSERT_TRUE(loom::testing::allclose(y, y_ref, 0, 0)) << "jvp's primal output differs from f(x)";
  ASSERT_EQ(y_dot.shape(), y.shape());
  ASSERT_EQ(y_dot.dtype(), y.dtype());
  const double h = 1e-6;
  auto shifted = [&](double s) {
    return loom::tree_map([s](const Array& a, const Array& d) { return a + d * s; }, x, t);
  };
  Array fd = (f(shifted(h)) - f(shifted(-h))) / (2 * h);
  EXPECT_TRUE(loom::testing::allclose(y_dot, fd, 1e-5, 1e-6));
}

TEST_P(JvpOp, TransposeIdentityWithVjp) {
  FloatView f(GetParam());
  Tree x = f.primals();
  Tree t = f.tangents(1.1);
  auto [y, y_dot] = loom::jvp(f, x, t);
  Array ct = wave(y.shape(), 2.3, y.dtype());
  auto [y2, pullback] = loom::vjp(f, x);
  Tree x_ct = pullback(ct);
  const double lhs = vdot(ct, y_dot), rhs = vdot(x_ct, t);
  EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::abs(rhs)));
}

TEST_P(JvpOp, LinearizeAgreesWithJvp) {
  FloatView f(GetParam());
  Tree x = f.primals();
  auto [y, f_jvp] = loom::linearize(f, x);
  for (double phase : {0.3, 1.9}) {
    Tree t = f.tangents(phase);
    EXPECT_TRUE(loom::testing::allclose(f_jvp(t), loom::jvp(f, x, t).second, 1e-12, 1e-12));
  }
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) {
  std::string n = info.param.name + "_" + std::to_string(info.index);
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(EveryDifferentiablePrimitive, JvpOp,
                         ::testing::ValuesIn(differentiable_cases()), case_name);

TEST(Jvp, SinTimesX) {
  // d/dx (sin(x) x) = cos(x) x + sin(x), analytically.
  Array x = f64({0.3, -1.2, 2.0}, {3});
  Array t = f64({1.0, 0.5, -2.0}, {3});
  auto [y, y_dot] = loom::jvp([](const Array& v) { return jnp::sin(v) * v; }, x, t);
  auto xv = x.to_vector<double>(), tv = t.to_vector<double>(), yd = y_dot.to_vector<double>();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(yd[i], (std::cos(xv[i]) * xv[i] + std::sin(xv[i])) * tv[i], 1e-14);
  }
  EXPECT_EQ(y.node(), nullptr);  // top-level outputs are detached
  EXPECT_EQ(y_dot.node(), nullptr);
}

TEST(Jvp, TreeInAndOut) {
  Tree x = {{"a", f64({1.0, 2.0}, {2})}, {"b", Array::scalar(3.0, DType::float64)}};
  Tree t = {{"a", f64({0.1, 0.2}, {2})}, {"b", Array::scalar(-1.0, DType::float64)}};
  auto f = [](const Tree& p) -> Tree {
    const Array& a = p.at("a").leaf();
    const Array& b = p.at("b").leaf();
    return Tree{{"prod", a * b}, {"sq", jnp::sum(a * a)}};
  };
  auto [y, y_dot] = loom::jvp(f, x, t);
  // d(a b) = da b + a db = {0.3 - 1, 0.6 - 2};  d(sum a^2) = 2 a . da = 0.2 + 0.8
  EXPECT_TRUE(loom::testing::allclose(y_dot.at("prod").leaf(), f64({-0.7, -1.4}, {2}), 1e-14));
  EXPECT_NEAR(y_dot.at("sq").leaf().item<double>(), 1.0, 1e-14);
}

TEST(Jvp, TangentMismatchIsAnError) {
  auto f = [](const Array& v) { return jnp::exp(v); };
  Array x = f64({1, 2, 3}, {3});
  EXPECT_TRUE(throws_error(
      [&] {
        loom::jvp(f, x, f64({1, 2}, {2}));
      },
      {"jvp", "primal and tangent", "float64(3,)", "float64(2,)"}));
  EXPECT_TRUE(throws_error([&] { loom::jvp(f, x, x.astype(DType::float32)); },
                           {"jvp", "float64(3,)", "float32(3,)", "dtype"}));
  Tree tx = {{"a", x}};
  Tree tt = {{"b", x}};
  EXPECT_TRUE(throws_error([&] { loom::jvp([](const Tree& p) { return p; }, tx, tt); },
                           {"jvp", "tree structure"}));
  auto [y, f_jvp] = loom::linearize(f, x);
  EXPECT_TRUE(throws_error([&] { f_jvp(f64({1}, {1})); }, {"linearize", "float64(1,)"}));
}

TEST(Jvp, InsideGradIsDifferentiable) {
  // g(x) = jvp(sin, x, 1) = cos(x); grad of g = -sin(x).
  auto g = [](const Array& x) {
    return loom::jvp([](const Array& v) { return jnp::sin(v); }, x, jnp::ones_like(x)).second;
  };
  Array x = Array::scalar(0.8, DType::float64);
  EXPECT_NEAR(loom::grad(g)(x).item<double>(), -std::sin(0.8), 1e-14);
}

}  // namespace
