// grad's argument checks: integer and bool arguments are refused as JAX's TypeError
// (jax/_src/api.py _check_input_dtype_revderiv), unless allow_int is set.
#include <gtest/gtest.h>

#include "loom/loom.hpp"
#include "test_util.hpp"

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::f64;
using loom::testing::throws_error;
namespace jnp = loom::numpy;

TEST(Autodiff, GradOfIntegerArrayArgumentIsAnError) {
  auto f = [](const Array& x) { return jnp::sum(x.astype(DType::float32)); };
  Array ints = {1, 2, 3};  // int32, the easy mistake of the issue
  ASSERT_EQ(ints.dtype(), DType::int32);
  EXPECT_TRUE(
      throws_error([&] { loom::grad(f)(ints); }, {"grad requires real- or complex-valued inputs",
                                                  "np.inexact", "but got int32", "allow_int"}));
  EXPECT_TRUE(throws_error([&] { loom::value_and_grad(f)(ints); }, {"but got int32"}));
  EXPECT_TRUE(throws_error([&] { loom::grad(f)(ints.astype(DType::uint32)); }, {"but got uint32"}));
  EXPECT_TRUE(throws_error([&] { loom::grad(f)(ints.astype(DType::bool_)); }, {"but got bool"}));
  // has_aux does not bypass the check.
  auto with_aux = [](const Array& x) {
    return std::make_pair(jnp::sum(x.astype(DType::float32)), x);
  };
  EXPECT_TRUE(
      throws_error([&] { loom::grad(with_aux, {.has_aux = true})(ints); }, {"but got int32"}));
}

TEST(Autodiff, GradOfTreeWithIntegerLeafNamesThePath) {
  Tree params = {{"Dense_0", {{"kernel", f64({1, 2}, {2})}, {"step", Array{7}}}}};
  auto loss = [](const Tree& p) { return jnp::sum(p.at_path({"Dense_0", "kernel"}).leaf()); };
  EXPECT_TRUE(throws_error(
      [&] { loom::grad(loss)(params); },
      {"grad requires real- or complex-valued inputs", "but got int32", "\"Dense_0/step\""}));
}

TEST(Autodiff, AllowIntGivesZeroGradientsForIntegerLeaves) {
  Tree params = {{"k", f64({1, 2}, {2})}, {"n", Array{7, 8}}};
  auto loss = [](const Tree& p) { return jnp::sum(p.at("k").leaf() * p.at("k").leaf()); };
  Tree g = loom::grad(loss, {.allow_int = true})(params);
  EXPECT_EQ(g.at("k").leaf().to_vector<double>(), (std::vector<double>{2, 4}));  // d/dk k^2 = 2k
  EXPECT_EQ(g.at("n").leaf().dtype(), DType::int32);
  EXPECT_EQ(g.at("n").leaf().to_vector<std::int32_t>(), (std::vector<std::int32_t>{0, 0}));
  Array gi = loom::grad([](const Array& x) { return jnp::sum(x.astype(DType::float64)); },
                        {.allow_int = true})(Array{1, 2});
  EXPECT_EQ(gi.to_vector<std::int32_t>(), (std::vector<std::int32_t>{0, 0}));
}

TEST(Autodiff, FloatingArgumentsStillDifferentiate) {
  Array x = f64({0.5, -1.5}, {2});
  EXPECT_TRUE(
      loom::testing::grad_matches_fd([](const Array& v) { return jnp::sum(v * v * v); }, x));
  Array g = loom::grad([](const Array& v) { return jnp::sum(v * v); })(x.astype(DType::float32));
  EXPECT_EQ(g.dtype(), DType::float32);
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{1.0f, -3.0f}));
}

TEST(Autodiff, GradOfGradOfSinIsMinusSin) {
  auto f = [](const Array& x) { return jnp::sin(x); };
  auto d1 = loom::grad(f);
  auto d2 = loom::grad(d1);
  auto d3 = loom::grad(d2);
  for (double v : {-1.3, 0.0, 0.4, 2.0}) {
    Array x = Array::scalar(v, DType::float64);
    EXPECT_NEAR(d1(x).item<double>(), std::cos(v), 1e-14);
    EXPECT_NEAR(d2(x).item<double>(), -std::sin(v), 1e-14);
    EXPECT_NEAR(d3(x).item<double>(), -std::cos(v), 1e-14);
  }
}

TEST(Autodiff, GradOfGradOfExp) {
  auto f = [](const Array& x) { return jnp::exp(x); };
  auto d2 = loom::grad(loom::grad(f));
  auto d3 = loom::grad(d2);
  Array x = Array::scalar(0.7, DType::float64);
  EXPECT_NEAR(d2(x).item<double>(), std::exp(0.7), 1e-14);
  EXPECT_NEAR(d3(x).item<double>(), std::exp(0.7), 1e-14);
  // d2/dx2 exp(exp(x)) = exp(exp(x)) e^x (e^x + 1)
  auto g2 = loom::grad(loom::grad([](const Array& v) { return jnp::exp(jnp::exp(v)); }));
  const double e = std::exp(0.7);
  EXPECT_NEAR(g2(x).item<double>(), std::exp(e) * e * (e + 1), 1e-12);
}
