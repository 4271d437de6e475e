// loom::vmap against an explicit loop over the examples (every primitive of the op lists,
// generated), nested vmap, in_axes None, out_axes 1, trees, per-example gradients and the
// errors. Golden values: the same function applied to each example (jnp::index) and stacked.
#include "loom/vmap.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "loom/loom.hpp"
#include "op_list_lax_nn.hpp"
#include "test_util.hpp"

namespace {

namespace jnp = loom::numpy;
using loom::Array;
using loom::Tree;

bool same_bits(const Array& a, const Array& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

::testing::AssertionResult close(const Array& a, const Array& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << a.shape() << " vs " << b.shape();
  if (same_bits(a, b)) return ::testing::AssertionSuccess();
  auto x = a.astype(loom::DType::float64).to_vector<double>();
  auto y = b.astype(loom::DType::float64).to_vector<double>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (std::abs(x[i] - y[i]) > 1e-12 * (1 + std::abs(y[i])))
      return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs " << y[i];
  }
  return ::testing::AssertionSuccess();
}

std::vector<loom::testing::OpCase> all_cases() {
  auto cases = loom::testing::numpy_op_cases();
  for (auto& c : loom::testing::lax_nn_op_cases()) cases.push_back(std::move(c));
  return cases;
}

// A batch of 3 examples of each input: floating inputs scaled by 1, 0.875, 0.75; other inputs
// repeated.
Array batch_of(const Array& a) {
  if (!loom::is_floating(a.dtype())) return jnp::stack({a, a, a}, 0);
  return jnp::stack({a, (a * 0.875).astype(a.dtype()), (a * 0.75).astype(a.dtype())}, 0);
}

TEST(Vmap, EveryOpEqualsALoop) {
  loom::detail::vmap_counts() = {};
  for (const auto& c : all_cases()) {
    SCOPED_TRACE(c.name);
    try {
      std::vector<Array> batched;
      for (const Array& a : c.inputs) batched.push_back(batch_of(a));
      std::vector<Array> per_example;
      for (std::int64_t b = 0; b < 3; ++b) {
        std::vector<Array> in;
        for (const Array& a : batched) in.push_back(jnp::index(a, b, 0));
        per_example.push_back(c.fn(in));
      }
      Array expect = jnp::stack(per_example, 0);
      auto fn = c.fn;
      Array got = loom::vmap([fn](const std::vector<Array>& in) { return fn(in); })(batched);
      EXPECT_TRUE(close(got, expect)) << c.name;
      // Only the first input batched, the others shared.
      if (c.inputs.size() > 1) {
        std::vector<Array> mixed = c.inputs;
        std::vector<Array> loop;
        for (std::int64_t b = 0; b < 3; ++b) {
          mixed[0] = jnp::index(batched[0], b, 0);
          loop.push_back(c.fn(mixed));
        }
        auto g = [fn, shared = c.inputs](const Array& first) {
          std::vector<Array> in = shared;
          in[0] = first;
          return fn(in);
        };
        EXPECT_TRUE(close(loom::vmap(g)(batched[0]), jnp::stack(loop, 0))) << c.name << " mixed";
      }
    } catch (const loom::Error& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
    }
  }
  // Which primitives ran once on the batch and which still loop over the examples (issue 9's
  // list of primitives without a batching rule).
  const loom::detail::VmapCounts counts = loom::detail::vmap_counts();
  std::string ruled, looped;
  for (const auto& [name, n] : counts.rule) ruled += " " + name;
  for (const auto& [name, n] : counts.loop) looped += " " + name;
  std::printf("vmap batching rules used:%s\nvmap primitives still looping:%s\n", ruled.c_str(),
              looped.c_str());
  for (const char* name : {"contract", "sum", "mean", "max", "reshape", "transpose", "slice",
                           "concatenate", "broadcast_to", "softmax", "log_softmax"}) {
    EXPECT_TRUE(counts.loop.count(name) == 0) << name << " loops";
    EXPECT_TRUE(counts.rule.count(name) == 1) << name << " has no rule in the op lists";
  }
}

TEST(Vmap, InAxesNoneAndOutAxes) {
  Array x = loom::testing::wave({4, 3}, 0.1);  // batch along axis 1: 3 examples of (4,)
  Array w = loom::testing::wave({4}, 0.7);
  auto f = [](const Array& a, const Array& b) { return jnp::sin(a) * b; };
  Array got = loom::vmap(f, {.in_axes = {1, std::nullopt}, .out_axes = 1})(x, w);
  std::vector<Array> loop;
  for (int b = 0; b < 3; ++b) loop.push_back(f(jnp::index(x, b, 1), w));
  EXPECT_TRUE(close(got, jnp::stack(loop, 1)));
  // An unbatched result is broadcast along out_axes.
  Array c = loom::vmap([](const Array&, const Array& b) { return b * 2.0; },
                       {.in_axes = {0, std::nullopt}})(x, w);
  EXPECT_EQ(c.shape(), (loom::Shape{4, 4}));
}

TEST(Vmap, Nested) {
  Array x = loom::testing::wave({2, 3, 4}, 0.3);
  auto f = [](const Array& v) { return jnp::sum(jnp::exp(v)) * v; };
  Array got = loom::vmap(loom::vmap(f))(x);
  std::vector<Array> outer;
  for (int i = 0; i < 2; ++i) {
    std::vector<Array> inner;
    for (int j = 0; j < 3; ++j) inner.push_back(f(jnp::index(jnp::index(x, i, 0), j, 0)));
    outer.push_back(jnp::stack(inner, 0));
  }
  EXPECT_TRUE(close(got, jnp::stack(outer, 0)));
}

TEST(Vmap, TreesAndPerExampleGradients) {
  Tree params = {{"w", loom::testing::wave({3, 2}, 0.2)}, {"b", loom::testing::wave({2}, 0.9)}};
  Array xs = loom::testing::wave({5, 3}, 0.4), ys = loom::testing::wave({5, 2}, 1.3);
  auto loss = [](const Tree& p, const Array& x, const Array& y) {
    Array pred = jnp::tanh(jnp::matmul(x, p.at("w").leaf()) + p.at("b").leaf());
    return jnp::sum(jnp::square(pred - y));
  };
  Tree per_example = loom::vmap(loom::grad(loss), {.in_axes = {std::nullopt, 0, 0}})(params, xs, ys);
  for (const char* name : {"w", "b"}) {
    std::vector<Array> loop;
    for (int b = 0; b < 5; ++b)
      loop.push_back(loom::grad(loss)(params, jnp::index(xs, b, 0), jnp::index(ys, b, 0)).at(name).leaf());
    EXPECT_TRUE(close(per_example.at(name).leaf(), jnp::stack(loop, 0))) << name;
  }
  // A batched Tree argument: every leaf along axis 0.
  Tree batched = {{"a", loom::testing::wave({3, 2}, 0.1)}, {"c", loom::testing::wave({3}, 0.6)}};
  Tree out = loom::vmap([](const Tree& t) {
    return Tree{{"s", jnp::sum(t.at("a").leaf()) + t.at("c").leaf()}};
  })(batched);
  EXPECT_TRUE(close(out.at("s").leaf(), jnp::sum(batched.at("a").leaf(), 1) + batched.at("c").leaf()));
}

TEST(Vmap, Errors) {
  Array x = loom::testing::wave({3, 2}, 0.1), y = loom::testing::wave({4, 2}, 0.2);
  auto f = [](const Array& a, const Array& b) { return a + b; };
  EXPECT_TRUE(loom::testing::throws_error([&] { loom::vmap(f, {.in_axes = {0}})(x, y); },
                                          {"in_axes has 1 entries", "2 arguments"}));
  EXPECT_TRUE(loom::testing::throws_error([&] { loom::vmap(f, {.in_axes = {2, 0}})(x, x); },
                                          {"out of range", "argument 0", "(3, 2)"}));
  EXPECT_TRUE(loom::testing::throws_error(
      [&] { loom::vmap(f)(x, y); },
      {"mismatched batch sizes", "argument 0 has size 3", "argument 1 has size 4"}));
  EXPECT_TRUE(loom::testing::throws_error(
      [&] {
        loom::vmap([](const Array& a) { return a * jnp::sum(a).item<double>(); })(x);
      },
      {"vmap", "batched value", "float64()"}));
}

}  // namespace
