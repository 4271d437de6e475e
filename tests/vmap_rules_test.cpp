// vmap's batching rules (detail::BatchRule): that they are used (a contraction runs once on the
// batch, not once per example: detail::vmap_counts), in_axes on non-zero axes and unbatched
// operands, nested vmap, vmap composed with grad and jit, and per-example gradients of an MLP
// and a small CNN. Golden values: the same function applied to each example and stacked (the
// definition of vmap), and for the MLP an analytic per-example gradient.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace {

namespace jnp = loom::numpy;
namespace lax = loom::lax;
using loom::Array;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::wave;

loom::detail::VmapCounts& counts() {
  return loom::detail::vmap_counts();
}

// f applied to example b of every batched argument (axis 0), stacked along axis 0.
template <typename F>
Array loop1(F f, const Array& x) {
  std::vector<Array> out;
  for (std::int64_t b = 0; b < x.shape()[0]; ++b) out.push_back(f(jnp::index(x, b, 0)));
  return jnp::stack(out, 0);
}

std::string names(const std::map<std::string, std::int64_t>& m) {
  std::string s;
  for (const auto& [name, n] : m) s += " " + name + "x" + std::to_string(n);
  return s;
}

TEST(VmapRules, MatmulRunsOnceOnTheBatch) {
  const Array w = wave({6, 4}, 0.3);
  const Array xs = wave({5, 6}, 0.1);  // 5 examples of (6,)
  auto f = [&](const Array& x) { return jnp::tanh(jnp::dot(x, w)); };
  counts() = {};
  const Array got = loom::vmap(f)(xs);
  EXPECT_EQ(counts().rule["contract"], 1);  // one (5, 6) @ (6, 4) GEMM
  EXPECT_TRUE(counts().loop.empty()) << names(counts().loop);
  EXPECT_TRUE(allclose(got, loop1(f, xs), 1e-12, 1e-12));
  // Both operands batched: a batched contraction, still one primitive run.
  const Array ws = wave({5, 6, 4}, 0.7);
  counts() = {};
  const Array both =
      loom::vmap([](const Array& x, const Array& m) { return jnp::matmul(x, m); })(xs, ws);
  EXPECT_EQ(counts().rule["contract"], 1);
  EXPECT_TRUE(counts().loop.empty()) << names(counts().loop);
  std::vector<Array> expect;
  for (int b = 0; b < 5; ++b)
    expect.push_back(jnp::matmul(jnp::index(xs, b, 0), jnp::index(ws, b, 0)));
  EXPECT_TRUE(allclose(both, jnp::stack(expect, 0), 1e-12, 1e-12));
}

TEST(VmapRules, InAxesNonZeroAndUnbatchedOperands) {
  // x batched along axis 1 (4 examples of (3, 2)), table shared, indices batched along 0.
  const Array x = wave({3, 4, 2}, 0.2);
  const Array table = wave({7, 2}, 0.5);
  const Array idx = Array(std::vector<std::int32_t>{0, 6, 3, 3, 1, 2, 5, 4}, loom::Shape{4, 2});
  auto f = [](const Array& a, const Array& t, const Array& i) {
    const Array rows = jnp::take(t, i, 0);                   // (2, 2) rows of the shared table
    const Array joined = jnp::concatenate({a, rows, t}, 0);  // batched with unbatched
    const Array s = jnp::sum(jnp::transpose(joined), {-1});  // (2,)
    return loom::nn::softmax(jnp::broadcast_to(s, {3, 2}) + jnp::max(a, {0}), -1);
  };
  counts() = {};
  const Array got = loom::vmap(f, {.in_axes = {1, std::nullopt, 0}, .out_axes = 2})(x, table, idx);
  EXPECT_TRUE(counts().loop.empty()) << names(counts().loop);
  for (const char* name :
       {"take", "concatenate", "transpose", "sum", "broadcast_to", "max", "softmax"})
    EXPECT_GE(counts().rule[name], 1) << name;
  std::vector<Array> expect;
  for (int b = 0; b < 4; ++b)
    expect.push_back(f(jnp::index(x, b, 1), table, jnp::index(idx, b, 0)));
  EXPECT_TRUE(allclose(got, jnp::stack(expect, 2), 1e-12, 1e-12));
}

TEST(VmapRules, NestedVmapUsesRulesAtBothLevels) {
  const Array w = wave({4, 3}, 0.9);
  const Array x = wave({2, 5, 4}, 0.4);
  auto f = [&](const Array& v) { return loom::nn::log_softmax(jnp::matmul(v, w)) - jnp::mean(v); };
  counts() = {};
  const Array got = loom::vmap(loom::vmap(f))(x);
  EXPECT_TRUE(counts().loop.empty()) << names(counts().loop);
  // The inner vmap's batched contraction is what the outer one traces and batches again.
  EXPECT_EQ(counts().rule["contract"], 2);
  std::vector<Array> outer;
  for (int i = 0; i < 2; ++i) outer.push_back(loop1(f, jnp::index(x, i, 0)));
  EXPECT_TRUE(allclose(got, jnp::stack(outer, 0), 1e-12, 1e-12));
}

TEST(VmapRules, ComposesWithJitAndGrad) {
  const Array w = wave({4, 3}, 0.6);
  const Array xs = wave({6, 4}, 0.2);
  auto f = [&](const Array& x) { return jnp::sum(jnp::square(jnp::dot(x, w))); };
  const Array expect = loop1(f, xs);
  EXPECT_TRUE(allclose(loom::jit(loom::vmap(f))(xs), expect, 1e-12, 1e-12));
  // grad through the batched evaluation: the rules' ops record their own VJPs. (m goes in as
  // an unbatched argument: a value f closes over is a constant of the traced graph.)
  auto total = [&](const Array& m) {
    auto per = [](const Array& x, const Array& mm) {
      return jnp::sum(jnp::square(jnp::dot(x, mm)));
    };
    return jnp::sum(loom::vmap(per, {.in_axes = {0, std::nullopt}})(xs, m));
  };
  // d/dW sum_b |x_b W|^2 = 2 X^T X W (analytic).
  const Array analytic = jnp::matmul(jnp::matmul(jnp::transpose(xs), xs), w) * 2.0;
  EXPECT_TRUE(allclose(loom::grad(total)(w), analytic, 1e-12, 1e-12));
}

// The MLP of the benchmark, small: per-example gradients vs a loop of grad, and the last
// layer's gradient vs its analytic form (softmax(z) - onehot(y)) outer h.
TEST(VmapRules, PerExampleGradientsOfAnMlp) {
  Tree params = {{"w1", wave({8, 6}, 0.1) * 0.5},
                 {"b1", wave({6}, 0.2) * 0.1},
                 {"w2", wave({6, 3}, 0.3) * 0.5},
                 {"b2", wave({3}, 0.4) * 0.1}};
  const Array xs = wave({5, 8}, 0.7);
  const Array ys = Array(std::vector<std::int32_t>{0, 2, 1, 1, 0}, loom::Shape{5});
  auto hidden = [](const Tree& p, const Array& x) {
    return loom::nn::relu(jnp::dot(x, p.at("w1").leaf()) + p.at("b1").leaf());
  };
  auto loss = [&](const Tree& p, const Array& x, const Array& y) {
    const Array z = jnp::dot(hidden(p, x), p.at("w2").leaf()) + p.at("b2").leaf();
    return loom::optim::softmax_cross_entropy_with_integer_labels(z, y);
  };
  counts() = {};
  const Tree per = loom::vmap(loom::grad(loss), {.in_axes = {std::nullopt, 0, 0}})(params, xs, ys);
  std::printf("MLP per-example grads: rules%s\n  loops%s\n", names(counts().rule).c_str(),
              names(counts().loop).c_str());
  EXPECT_EQ(counts().loop.count("contract"), 0u) << names(counts().loop);
  EXPECT_TRUE(counts().loop.empty()) << names(counts().loop);
  for (const char* name : {"w1", "b1", "w2", "b2"}) {
    std::vector<Array> loop;
    for (int b = 0; b < 5; ++b)
      loop.push_back(
          loom::grad(loss)(params, jnp::index(xs, b, 0), jnp::index(ys, b, 0)).at(name).leaf());
    EXPECT_TRUE(allclose(per.at(name).leaf(), jnp::stack(loop, 0), 1e-12, 1e-12)) << name;
  }
  for (int b = 0; b < 5; ++b) {
    const Array h = hidden(params, jnp::index(xs, b, 0));
    const Array z = jnp::dot(h, params.at("w2").leaf()) + params.at("b2").leaf();
    const Array d = loom::nn::softmax(z) - jnp::one_hot(jnp::index(ys, b, 0), 3, z.dtype());
    EXPECT_TRUE(allclose(jnp::index(per.at("w2").leaf(), b, 0),
                         jnp::matmul(jnp::expand_dims(h, 1), jnp::expand_dims(d, 0)), 1e-12,
                         1e-12));
    EXPECT_TRUE(allclose(jnp::index(per.at("b2").leaf(), b, 0), d, 1e-12, 1e-12));
  }
}

TEST(VmapRules, PerExampleGradientsOfASmallCnn) {
  Tree params = {{"k", wave({3, 3, 2, 4}, 0.3) * 0.4},
                 {"w", wave({16, 3}, 0.8) * 0.3},
                 {"b", wave({3}, 0.1) * 0.1}};
  const Array xs = wave({4, 6, 6, 2}, 0.5);  // 4 images, HWC
  const Array ys = Array(std::vector<std::int32_t>{2, 0, 1, 2}, loom::Shape{4});
  for (lax::ReduceOp pool : {lax::ReduceOp::sum, lax::ReduceOp::max}) {
    SCOPED_TRACE(pool == lax::ReduceOp::sum ? "sum pool" : "max pool");
    auto loss = [pool](const Tree& p, const Array& x, const Array& y) {
      const Array img = jnp::expand_dims(x, {0});  // (1, 6, 6, 2)
      const Array c = loom::nn::relu(
          lax::conv_general_dilated(img, p.at("k").leaf(), {1, 1}, lax::Padding::same()));
      const Array pooled =
          lax::reduce_window(c, pool, {1, 3, 3, 1}, {1, 3, 3, 1}, lax::Padding::valid());
      const Array z =
          jnp::matmul(jnp::reshape(pooled, {1, -1}), p.at("w").leaf()) + p.at("b").leaf();
      return jnp::mean(
          loom::optim::softmax_cross_entropy_with_integer_labels(z, jnp::expand_dims(y, {0})));
    };
    counts() = {};
    const Tree per =
        loom::vmap(loom::grad(loss), {.in_axes = {std::nullopt, 0, 0}})(params, xs, ys);
    std::printf("CNN per-example grads: rules%s\n  loops%s\n", names(counts().rule).c_str(),
                names(counts().loop).c_str());
    EXPECT_GE(counts().rule["conv_general_dilated"], 1);
    EXPECT_GE(counts().rule["reduce_window"], 1);
    // The max-pool VJP (which selects from its own input) batches too; only the filter
    // gradient (per-example x and gy) still loops.
    EXPECT_EQ(counts().loop.count("reduce_window_select_scatter"), 0u) << names(counts().loop);
    for (const char* name : {"k", "w", "b"}) {
      std::vector<Array> loop;
      for (int b = 0; b < 4; ++b)
        loop.push_back(
            loom::grad(loss)(params, jnp::index(xs, b, 0), jnp::index(ys, b, 0)).at(name).leaf());
      EXPECT_TRUE(allclose(per.at(name).leaf(), jnp::stack(loop, 0), 1e-10, 1e-12)) << name;
    }
  }
}

// The max-pool VJP selects each window's maximum from the input it runs on: a jit replay and
// a vmap batch must not reuse the positions selected while tracing (analytic: the gradient of
// sum(max over pairs) is the indicator of each pair's maximum).
TEST(VmapRules, MaxPoolGradientSelectsFromItsOwnInput) {
  auto f = [](const Array& x) {
    return jnp::sum(lax::reduce_window(x, lax::ReduceOp::max, {2}, {2}, lax::Padding::valid()));
  };
  const Array a = loom::testing::f64({1, 0, 0, 1}, {4});
  const Array b = loom::testing::f64({0, 1, 1, 0}, {4});
  auto g = loom::jit(loom::grad(f));
  EXPECT_TRUE(allclose(g(a), a, 0, 0));
  EXPECT_TRUE(allclose(g(b), b, 0, 0));  // replayed on another input
  const Array both = jnp::stack({a, b}, 0);
  EXPECT_TRUE(allclose(loom::vmap(loom::grad(f))(both), both, 0, 0));
}

// take's VJP scatters to the indices it runs on (an embedding's per-example gradient): under
// vmap with batched indices and under jit replayed on new indices (analytic: the gradient of
// sum(E[i]) is 1 on the rows taken, counted with multiplicity).
TEST(VmapRules, TakeGradientScattersToItsOwnIndices) {
  const Array e = wave({4, 2}, 0.3);
  auto f = [](const Array& table, const Array& i) { return jnp::sum(jnp::take(table, i, 0)); };
  const Array idx = Array(std::vector<std::int32_t>{0, 3, 2, 2}, loom::Shape{2, 2});
  const Array per = loom::vmap(loom::grad(f), {.in_axes = {std::nullopt, 0}})(e, idx);
  const Array expect = loom::testing::f64({1, 1, 0, 0, 0, 0, 1, 1,  //
                                           0, 0, 0, 0, 2, 2, 0, 0},
                                          {2, 4, 2});
  EXPECT_TRUE(allclose(per, expect, 0, 0));
  auto g = loom::jit(loom::grad(f));
  g(e, jnp::index(idx, 0, 0));
  EXPECT_TRUE(allclose(g(e, jnp::index(idx, 1, 0)), jnp::index(expect, 1, 0), 0, 0));
}

// take_along_axis's scatter follows the indices each replay or example brings (analytic: the
// gradient of sum(take_along_axis(x, i, 1)) counts how often each column is picked per row).
TEST(VmapRules, TakeAlongAxisGradientScattersToItsOwnIndices) {
  const Array x = wave({2, 3}, 0.2);
  auto f = [](const Array& v, const Array& i) { return jnp::sum(jnp::take_along_axis(v, i, 1)); };
  const Array idx = Array(std::vector<std::int32_t>{0, 0, 2, 1, 2, 2, 0, 1}, loom::Shape{2, 2, 2});
  const Array expect = loom::testing::f64({2, 0, 0, 0, 1, 1,  //
                                           0, 0, 2, 1, 1, 0},
                                          {2, 2, 3});
  const Array per = loom::vmap(loom::grad(f), {.in_axes = {std::nullopt, 0}})(x, idx);
  EXPECT_TRUE(allclose(per, expect, 0, 0));
  auto g = loom::jit(loom::grad(f));
  g(x, jnp::index(idx, 0, 0));
  EXPECT_TRUE(allclose(g(x, jnp::index(idx, 1, 0)), jnp::index(expect, 1, 0), 0, 0));
  EXPECT_TRUE(allclose(g(x, jnp::index(idx, 0, 0)), jnp::index(expect, 0, 0), 0, 0));
}

}  // namespace

// lax.pad with a per-example padding value (the operand shared, then batched too) runs once on
// the batch and equals the loop; interior padding and a negative (cropping) edge included.
TEST(VmapRules, PadWithPerExamplePaddingValue) {
  const std::vector<lax::PadConfig> config = {{1, -1, 1}, {-1, 2, 0}};
  const Array x = wave({3, 4}, 0.3);
  const Array xs = wave({5, 3, 4}, 0.6);
  const Array values = Array(std::vector<double>{0.5, -1.0, 2.0, 0.0, 3.5}, loom::Shape{5});
  auto padded = [&](const Array& a, const Array& v) { return lax::pad(a, v, config); };
  for (bool batch_operand : {false, true}) {
    SCOPED_TRACE(batch_operand ? "operand batched" : "operand shared");
    counts() = {};
    const Array got = batch_operand ? loom::vmap(padded)(xs, values)
                                    : loom::vmap(padded, {.in_axes = {std::nullopt, 0}})(x, values);
    EXPECT_TRUE(counts().loop.empty()) << names(counts().loop);
    std::vector<Array> loop;
    for (int b = 0; b < 5; ++b)
      loop.push_back(padded(batch_operand ? jnp::index(xs, b, 0) : x, jnp::index(values, b, 0)));
    EXPECT_TRUE(allclose(got, jnp::stack(loop, 0), 0, 0));
  }
}
