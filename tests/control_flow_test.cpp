// lax control flow: scan, fori_loop, while_loop, cond, switch_ (loom/control_flow.hpp).
// Expected values are analytic (cumulative sums, geometric growth, closed-form derivatives);
// gradients are checked against finite differences in float64.
#include "loom/control_flow.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "loom/autodiff.hpp"
#include "loom/numpy.hpp"
#include "test_util.hpp"

namespace loom {
namespace {

namespace jnp = loom::numpy;
using testing::allclose;
using testing::f64;
using testing::grad_matches_fd;
using testing::throws_error;

using Step = std::pair<Tree, Tree>;

TEST(Scan, CumulativeSumCarriesAndStacks) {
  auto [total, partial] = lax::scan(
      [](const Tree& c, const Tree& x) {
        Array s = c.leaf() + x.leaf();
        return Step{s, s};
      },
      Array::scalar(0.0), f64({1, 2, 3, 4}, {4}));
  EXPECT_DOUBLE_EQ(total.leaf().item<double>(), 10.0);
  EXPECT_TRUE(allclose(partial.leaf(), f64({1, 3, 6, 10}, {4}), 0, 0));
}

TEST(Scan, ReverseKeepsYsAlignedWithXs) {
  // JAX: with reverse=True the scan runs from the end, and ys[i] is the output for xs[i].
  auto [total, partial] = lax::scan(
      [](const Tree& c, const Tree& x) {
        Array s = c.leaf() + x.leaf();
        return Step{s, s};
      },
      Array::scalar(0.0), f64({1, 2, 3, 4}, {4}), {.reverse = true});
  EXPECT_DOUBLE_EQ(total.leaf().item<double>(), 10.0);
  EXPECT_TRUE(allclose(partial.leaf(), f64({10, 9, 7, 4}, {4}), 0, 0));
}

TEST(Scan, TreesOfRowsAndLengthWithoutXs) {
  // xs: a dict of two leaves scanned over rows; carry: a dict.
  Tree xs = {{"a", f64({1, 2, 3, 4, 5, 6}, {3, 2})}, {"b", f64({10, 20, 30}, {3})}};
  Tree init = {{"sum", jnp::zeros({2}, DType::float64)}, {"count", Array::scalar(0.0)}};
  auto [carry, ys] = lax::scan(
      [](const Tree& c, const Tree& x) {
        Tree next = {{"sum", c.at("sum").leaf() + x.at("a").leaf()},
                     {"count", c.at("count").leaf() + 1.0}};
        return Step{next, Tree{{"b2", x.at("b").leaf() * 2.0}}};
      },
      init, xs);
  EXPECT_TRUE(allclose(carry.at("sum").leaf(), f64({9, 12}, {2}), 0, 0));
  EXPECT_DOUBLE_EQ(carry.at("count").leaf().item<double>(), 3.0);
  EXPECT_TRUE(allclose(ys.at("b2").leaf(), f64({20, 40, 60}, {3}), 0, 0));

  auto [c2, powers] = lax::scan(
      [](const Tree& c, const Tree&) {
        Array n = c.leaf() * 2.0;
        return Step{n, n};
      },
      Array::scalar(1.0), Tree(), {.length = 5});
  EXPECT_DOUBLE_EQ(c2.leaf().item<double>(), 32.0);
  EXPECT_TRUE(allclose(powers.leaf(), f64({2, 4, 8, 16, 32}, {5}), 0, 0));
}

TEST(Scan, GradientThroughARecurrence) {
  // h_t = tanh(w * h_{t-1} + x_t); loss = sum_t h_t. Checked against finite differences in w.
  const Array xs = f64({0.3, -0.2, 0.5, 0.1}, {4});
  auto loss = [&](const Array& w) {
    auto [h, hs] = lax::scan(
        [&](const Tree& c, const Tree& x) {
          Array h = jnp::tanh(w * c.leaf() + x.leaf());
          return Step{h, h};
        },
        Array::scalar(0.2), xs);
    return jnp::sum(hs.leaf()) + jnp::sum(h.leaf());
  };
  EXPECT_TRUE(grad_matches_fd(loss, f64({0.7}, {})));
}

TEST(Scan, ErrorsNameTheMismatch) {
  auto changes_shape = [](const Tree& c, const Tree& x) {
    return Step{jnp::concatenate({c.leaf(), x.leaf()}, 0), x};
  };
  EXPECT_TRUE(throws_error(
      [&] {
        lax::scan(changes_shape, f64({0}, {1}), f64({1, 2}, {2, 1}));
      },
      {"carry input and carry output must have equal types", "(1,)", "(2,)"}));
  auto id = [](const Tree& c, const Tree& x) { return Step{c, x}; };
  EXPECT_TRUE(throws_error([&] { lax::scan(id, Array::scalar(0.0), Tree()); }, {"options.length"}));
  EXPECT_TRUE(throws_error(
      [&] {
        lax::scan(id, Array::scalar(0.0), f64({1, 2}, {2}), {.length = 3});
      },
      {"length 3", "leading size 2"}));
  Tree ragged = {{"a", f64({1, 2}, {2})}, {"b", f64({1, 2, 3}, {3})}};
  EXPECT_TRUE(throws_error([&] { lax::scan(id, Array::scalar(0.0), ragged); },
                           {"different leading sizes"}));
  EXPECT_TRUE(throws_error([&] { lax::scan(id, Array::scalar(0.0), Array::scalar(1.0)); },
                           {"is a scalar"}));
}

TEST(ForiLoop, SumsTheIndexAndChecksTypes) {
  // sum_{i=2}^{6} i = 20
  Tree v = lax::fori_loop(
      2, 7, [](std::int64_t i, const Tree& v) { return Tree(v.leaf() + double(i)); },
      Array::scalar(0.0));
  EXPECT_DOUBLE_EQ(v.leaf().item<double>(), 20.0);
  EXPECT_TRUE(throws_error(
      [] {
        lax::fori_loop(
            0, 2, [](std::int64_t, const Tree& v) { return Tree(v.leaf().astype(DType::float32)); },
            Array::scalar(0.0));
      },
      {"fori_loop", "float64()", "float32()"}));
  // d/dx of x^(2^3) (three squarings) = 8 x^7.
  auto f = [](const Array& x) {
    return lax::fori_loop(
               0, 3, [](std::int64_t, const Tree& v) { return Tree(v.leaf() * v.leaf()); }, x)
        .leaf();
  };
  EXPECT_NEAR(grad(f)(Array::scalar(1.1)).item<double>(), 8 * std::pow(1.1, 7), 1e-12);
}

TEST(WhileLoop, RunsUntilTheConditionFails) {
  Tree v = lax::while_loop([](const Tree& v) { return v.leaf() < 100.0; },
                           [](const Tree& v) { return Tree(v.leaf() * 3.0); }, Array::scalar(1.0));
  EXPECT_DOUBLE_EQ(v.leaf().item<double>(), 243.0);  // 1, 3, 9, 27, 81, 243
  EXPECT_TRUE(throws_error(
      [] {
        lax::while_loop([](const Tree& v) { return v.leaf(); }, [](const Tree& v) { return v; },
                        f64({1, 2}, {2}));
      },
      {"while_loop", "scalar bool or integer", "float64(2,)"}));
  // Differentiable in loom (JAX refuses reverse mode here): x doubled while below 10; from 1.5
  // that is three times (1.5, 3, 6, 12), so the result is 8 x and its derivative 8.
  auto f = [](const Array& x) {
    return lax::while_loop([](const Tree& v) { return v.leaf() < 10.0; },
                           [](const Tree& v) { return Tree(v.leaf() * 2.0); }, x)
        .leaf();
  };
  EXPECT_DOUBLE_EQ(grad(f)(Array::scalar(1.5)).item<double>(), 8.0);
}

TEST(Cond, ChoosesABranchAndDifferentiatesIt) {
  auto square = [](const Tree& v) { return Tree(v.leaf() * v.leaf()); };
  auto negate = [](const Tree& v) { return Tree(-v.leaf()); };
  const Array x = f64({3}, {});
  EXPECT_DOUBLE_EQ(lax::cond(x > 0.0, square, negate, x).leaf().item<double>(), 9.0);
  EXPECT_DOUBLE_EQ(lax::cond(x < 0.0, square, negate, x).leaf().item<double>(), -3.0);
  EXPECT_DOUBLE_EQ(
      lax::cond(Array::scalar(std::int32_t(2)), square, negate, x).leaf().item<double>(), 9.0);
  EXPECT_DOUBLE_EQ(lax::cond(false, square, negate, x).leaf().item<double>(), -3.0);
  auto f = [&](const Array& v) { return lax::cond(v > 0.0, square, negate, v).leaf(); };
  EXPECT_DOUBLE_EQ(grad(f)(x).item<double>(), 6.0);
  EXPECT_DOUBLE_EQ(grad(f)(f64({-2}, {})).item<double>(), -1.0);
  EXPECT_TRUE(throws_error([&] { lax::cond(x, square, negate, x); },
                           {"lax::cond", "scalar bool or integer", "float64()"}));
}

TEST(Switch, ClampsTheIndexAsJax) {
  std::vector<lax::Branch> branches = {
      [](const Tree& v) { return Tree(v.leaf() + 1.0); },
      [](const Tree& v) { return Tree(v.leaf() * 10.0); },
      [](const Tree& v) { return Tree(-v.leaf()); },
  };
  const Array x = f64({2}, {});
  auto at = [&](std::int32_t k) {
    return lax::switch_(Array::scalar(k), branches, x).leaf().item<double>();
  };
  EXPECT_DOUBLE_EQ(at(0), 3.0);
  EXPECT_DOUBLE_EQ(at(1), 20.0);
  EXPECT_DOUBLE_EQ(at(2), -2.0);
  EXPECT_DOUBLE_EQ(at(7), -2.0);  // clamped to the last branch
  EXPECT_DOUBLE_EQ(at(-3), 3.0);  // clamped to the first
  EXPECT_TRUE(
      throws_error([&] { lax::switch_(Array::scalar(true), branches, x); }, {"integer scalar"}));
  EXPECT_TRUE(throws_error([&] { lax::switch_(Array::scalar(0), {}, x); }, {"at least one"}));
}

}  // namespace
}  // namespace loom
