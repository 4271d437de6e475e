// jit's fusion pass (src/transforms/fusion.cpp): fused elementwise chains and in-place buffer
// reuse give the same bits as eager execution and as the unfused (node by node) replay
// (memcmp), on chains with scalar, row and column broadcasts and sizes around the block size
// and past the parallel threshold; arguments, reshape views and values read twice are never
// overwritten; the MLP and CNN training steps under jit equal the unfused jit bit for bit and
// eager to float32 rounding (loom/jit.hpp lists why) over 3 steps. Golden values: the eager
// result of the same ops (the fuser must reproduce them exactly).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "jit_test_util.hpp"
#include "loom/loom.hpp"
#include "models/cnn.hpp"

namespace {

namespace jnp = loom::numpy;
namespace nn = loom::nn;
namespace optim = loom::optim;
using loom::Array;
using loom::Shape;
using loom::Tree;
using loom::testing::near;
using loom::testing::normal;
using loom::testing::same_bits;

using Fn = std::function<std::vector<Array>(const std::vector<Array>&)>;

// Jits f with and without fusion, calls both twice (the second call replays with new inputs)
// and compares every result with eager f bit for bit; returns the fused graph's info.
loom::detail::GraphInfo expect_fused_equals_eager(const Fn& f, std::vector<Array> in) {
  auto fused = loom::jit([f](const std::vector<Array>& x) { return f(x); });
  auto plain = loom::jit([f](const std::vector<Array>& x) { return f(x); }, {.fuse = false});
  fused(in);
  plain(in);
  for (Array& a : in)
    if (a.dtype() == loom::DType::float32) a = a * 0.75 - 0.125;
  const std::vector<Array> eager = f(in), a = fused(in), b = plain(in);
  EXPECT_EQ(fused.cache_misses(), 1u);
  EXPECT_EQ(a.size(), eager.size());
  for (std::size_t i = 0; i < eager.size() && i < a.size(); ++i) {
    EXPECT_TRUE(same_bits(a[i], eager[i])) << "result " << i << " " << fused.graph_str(in);
    EXPECT_TRUE(same_bits(b[i], eager[i])) << "result " << i;
  }
  return fused.graph_info(in);
}

const std::vector<std::int64_t> kSizes = {1, 7, 1023, 1024, 1025, 5000, 70001};

TEST(JitFusion, UnaryAndBinaryChainsEqualEagerBitForBit) {
  for (std::int64_t n : kSizes) {
    SCOPED_TRACE(n);
    auto info = expect_fused_equals_eager(
        [](const std::vector<Array>& x) {
          Array t = jnp::tanh(x[0] * x[1] + 1.5) - jnp::exp(-x[0]);
          Array u = jnp::sqrt(jnp::abs(t)) / (jnp::square(x[1]) + 0.5);
          Array v = jnp::maximum(jnp::minimum(u, 2.0), jnp::log(jnp::abs(x[0]) + 1e-3));
          return std::vector<Array>{jnp::rsqrt(v * v + 1.0) + jnp::log1p(jnp::abs(x[1]))};
        },
        {normal(1, {n}), normal(2, {n})});
    EXPECT_EQ(info.num_steps, 1u);  // the whole chain is one fused node
    EXPECT_EQ(info.num_fused_groups, 1u);
    EXPECT_EQ(info.num_fused_nodes, info.num_nodes);
  }
}

TEST(JitFusion, ActivationsAndReluMaskEqualEagerBitForBit) {
  for (std::int64_t n : kSizes) {
    SCOPED_TRACE(n);
    auto info = expect_fused_equals_eager(
        [](const std::vector<Array>& x) {
          Array a = nn::silu(x[0] * 2.0);  // silu writes y before reading x again
          Array b = nn::gelu(a - x[1]);
          Array c = nn::sigmoid(b) + nn::softplus(x[1]) + nn::gelu(x[0], false);
          Array d = jnp::where(x[0] > 0.0, c, 0.0);  // relu's mask into a gradient
          return std::vector<Array>{nn::relu(d) + nn::log_sigmoid(a) + nn::relu6(c)};
        },
        {normal(3, {n}), normal(4, {n})});
    EXPECT_EQ(info.num_steps, 1u);
    EXPECT_GE(info.num_fused_nodes, 12u);
  }
}

TEST(JitFusion, BroadcastOperandsEqualEagerBitForBit) {
  for (std::int64_t rows : {1, 3, 129}) {
    for (std::int64_t cols : {1, 10, 1000, 1537}) {
      SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols));
      auto info = expect_fused_equals_eager(
          [](const std::vector<Array>& x) {
            Array h = nn::relu(x[0] + x[1]);                             // Dense bias (B, F) + (F,)
            Array z = jnp::exp(x[0] - x[2]) * x[2];                      // softmax's (B, 1) column
            Array s = jnp::where(h > 0.5, z, x[3]) * 3.0;                // a 0-d operand
            return std::vector<Array>{s + jnp::reshape(x[1], {1, -1})};  // (1, F)
          },
          {normal(5, {rows, cols}), normal(6, {cols}), normal(7, {rows, 1}), normal(8, {})});
      EXPECT_GE(info.num_fused_nodes, 7u);
    }
  }
}

TEST(JitFusion, ArgumentsAreNeverOverwritten) {
  auto f = loom::jit([](const Array& x, const Array& y) { return jnp::exp(x) * 2.0 + y; });
  Array x = normal(9, {3000}), y = normal(10, {3000});
  f(x, y);
  const std::vector<float> x0 = x.to_vector<float>(), y0 = y.to_vector<float>();
  Array out = f(x, y);
  EXPECT_EQ(x.to_vector<float>(), x0);
  EXPECT_EQ(y.to_vector<float>(), y0);
  EXPECT_TRUE(same_bits(out, jnp::exp(x) * 2.0 + y));
  // Temporaries passed straight in are not written either (the call's leaves hold them).
  Array t = f(x * 1.0, y * 1.0);
  EXPECT_TRUE(same_bits(t, out));
  EXPECT_EQ(f.graph_info(x, y).num_fused_nodes, 3u);
}

TEST(JitFusion, ValuesReadTwiceOrViewedAreNotFusedAway) {
  for (std::int64_t n : {5, 4096}) {
    auto info = expect_fused_equals_eager(
        [n](const std::vector<Array>& x) {
          Array a = x[0] * 2.0 + 1.0;  // read by sum (not fusable) and by exp
          Array s = jnp::sum(a);
          Array b = jnp::exp(a) - x[0];
          Array v = jnp::reshape(b, {n, 1});  // a view of b, alive after b's last fused use
          Array c = jnp::tanh(b);
          return std::vector<Array>{s, c, v, a};  // a: a result too
        },
        {normal(11, {n})});
    EXPECT_GE(info.num_fused_groups, 2u);
  }
}

TEST(JitFusion, ConstantsAreNeverOverwritten) {
  Array k = normal(12, {2048});
  auto f = loom::jit([k](const Array& x) { return jnp::tanh(k + 1.0) * x; });
  Array x = normal(13, {2048});
  const std::vector<float> k0 = k.to_vector<float>();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(f(x), jnp::tanh(k + 1.0) * x));
  EXPECT_EQ(k.to_vector<float>(), k0);
}

TEST(JitFusion, GradOfJitRunsTheNodesAndMatches) {
  // Under an outer grad the replay must bind every primitive: the fused plan is skipped.
  auto f = loom::jit([](const Array& x) { return jnp::sum(nn::relu(x * 3.0 + 1.0) * x); });
  Array x = normal(14, {2000});
  Array g1 = loom::grad([&](const Array& v) { return f(v); })(x);
  Array g2 = loom::grad([](const Array& v) { return jnp::sum(nn::relu(v * 3.0 + 1.0) * v); })(x);
  EXPECT_TRUE(same_bits(g1, g2));
}

struct Mlp : nn::Module<Mlp> {
  Array call(const Array& x) const {
    Array h = nn::relu(nn::Dense{.features = 64}(x));
    h = nn::relu(nn::Dense{.features = 48}(h));
    return nn::Dense{.features = 10}(h);
  }
};

template <typename Model>
void expect_training_matches(const Model& model, Shape image_shape) {
  Tree params = model.init(loom::random::key(0), jnp::ones(image_shape)).at("params");
  auto tx = optim::sgd(0.1, 0.9);
  Tree opt_state = tx.init(params);
  auto step = [model, tx](const Tree& p, const Tree& s, const Array& x, const Array& y) {
    auto loss_fn = [&](const Tree& q) {
      Array logits = model.apply(Tree{{"params", q}}, x);
      return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, y));
    };
    auto [loss, grads] = loom::value_and_grad(loss_fn)(p);
    auto [updates, new_state] = tx.update(grads, s, p);
    return std::make_tuple(optim::apply_updates(p, updates), new_state, loss);
  };
  auto fused = loom::jit(step);
  auto plain = loom::jit(step, {.fuse = false});
  Tree pe = params, se = opt_state, pf = params, sf = opt_state, pp = params, sp = opt_state;
  for (int i = 0; i < 3; ++i) {
    Array images = normal(20 + i, image_shape);
    Array labels = loom::random::randint(loom::random::key(30 + i), {image_shape[0]}, 0, 10);
    auto [p1, s1, l1] = step(pe, se, images, labels);
    auto [p2, s2, l2] = fused(pf, sf, images, labels);
    auto [p3, s3, l3] = plain(pp, sp, images, labels);
    EXPECT_TRUE(same_bits(p2, p3)) << "step " << i;
    EXPECT_TRUE(same_bits(s2, s3)) << "step " << i;
    EXPECT_TRUE(same_bits(l2, l3)) << "step " << i;
    EXPECT_TRUE(near(p2, p1)) << "step " << i;
    EXPECT_TRUE(near(s2, s1)) << "step " << i;
    pe = p1, se = s1, pf = p2, sf = s2, pp = p3, sp = s3;
    if (i == 0) {
      const auto info = fused.graph_info(pf, sf, images, labels);
      EXPECT_GT(info.num_fused_nodes, 0u);
      EXPECT_GT(info.num_in_place, 0u);
      EXPECT_LT(info.num_steps, info.num_nodes);
      EXPECT_LE(info.peak_live_bytes, info.unfused_peak_live_bytes);
      EXPECT_EQ(plain.graph_info(pp, sp, images, labels).num_fused_nodes, 0u);
    }
  }
}

TEST(JitFusion, MlpTrainingStepEqualsUnfusedAndEager) {
  expect_training_matches(Mlp{}, {16, 40});
}

TEST(JitFusion, CnnTrainingStepEqualsUnfusedAndEager) {
  expect_training_matches(loom::models::CNN{}, {4, 28, 28, 1});
}

TEST(JitFusion, GraphStrMarksFusedGroups) {
  auto f = loom::jit([](const Array& x, const Array& b) { return nn::relu(x + b); });
  const std::string s = f.graph_str(normal(15, {4, 8}), normal(16, {8}));
  EXPECT_NE(s.find("fused {"), std::string::npos) << s;
  EXPECT_NE(s.find("relu"), std::string::npos) << s;
}

}  // namespace
