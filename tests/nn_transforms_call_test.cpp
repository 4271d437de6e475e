// nn::remat and nn::jit: Flax's tests/linen/linen_transforms_test.py test_jit and test_remat
// (a transformed MLP applied with the plain MLP's variables gives the same outputs), Flax's
// lifted class names, gradients equal to the plain model's, and trace-time side effects.
#include <gtest/gtest.h>

#include "loom/autodiff.hpp"
#include "loom/jit.hpp"
#include "loom/nn.hpp"
#include "loom/nn/transforms_call.hpp"
#include "loom/numpy.hpp"
#include "loom/random.hpp"
#include "test_util.hpp"

namespace loom {
namespace {

namespace jnp = loom::numpy;
using testing::allclose;
using testing::throws_error;

enum class Transform { none, jit, remat };

// linen_transforms_test.py's TransformedMLP: Dense layers named layers_i, relu between.
struct TransformedMLP : nn::Module<TransformedMLP> {
  std::vector<std::int64_t> features;
  Transform transform = Transform::none;
  Array call(const Array& inputs) const {
    Array x = inputs;
    for (std::size_t i = 0; i < features.size(); ++i) {
      const std::string name = "layers_" + std::to_string(i);
      const nn::Dense dense{.features = features[i]};
      switch (transform) {
        case Transform::none:
          x = child(name, dense)(x);
          break;
        case Transform::jit:
          x = child(name, nn::jit(dense))(x);
          break;
        case Transform::remat:
          x = child(name, nn::remat(dense))(x);
          break;
      }
      if (i + 1 != features.size()) x = nn::relu(x);
    }
    return x;
  }
};

Array input() {
  return random::uniform(random::split(random::key(3), 2)[0], {4, 4});
}

TEST(NnJit, TestJitAppliesThePlainVariables) {
  const Array x = input();
  const TransformedMLP normal{.features = {3, 4, 5}};
  const TransformedMLP jitted{.features = {3, 4, 5}, .transform = Transform::jit};
  const Tree variables = normal.init(random::key(7), x);
  const Array y1 = normal.apply(variables, x);
  const Array y2 = jitted.apply(variables, x);
  EXPECT_TRUE(allclose(y1, y2, 0, 0));
  // A second input of the same shape replays the cached graph: still equal.
  const Array x2 = x * 1.5;
  EXPECT_TRUE(allclose(normal.apply(variables, x2), jitted.apply(variables, x2), 0, 0));
}

TEST(NnRemat, TestRematAppliesThePlainVariablesAndGradientsMatch) {
  const Array x = input();
  const TransformedMLP normal{.features = {3, 4, 5}};
  const TransformedMLP remat{.features = {3, 4, 5}, .transform = Transform::remat};
  const Tree variables = normal.init(random::key(7), x);
  EXPECT_TRUE(allclose(normal.apply(variables, x), remat.apply(variables, x), 0, 0));
  auto loss = [&](const TransformedMLP& m) {
    return [&m, &x](const Tree& params) {
      return jnp::sum(jnp::square(m.apply(Tree{{"params", params}}, x)));
    };
  };
  const Tree g1 = grad(loss(normal))(variables.at("params"));
  const Tree g2 = grad(loss(remat))(variables.at("params"));
  for (const auto& [path, leaf] : tree_leaves_with_path(g1)) {
    SCOPED_TRACE(path.back());
    EXPECT_TRUE(allclose(leaf, g2.at_path(path).leaf(), 0, 0));
  }
}

TEST(NnJit, GradientsThroughTheJittedCallMatch) {
  const Array x = input();
  const TransformedMLP normal{.features = {3, 2}};
  const TransformedMLP jitted{.features = {3, 2}, .transform = Transform::jit};
  const Tree variables = normal.init(random::key(1), x);
  auto loss = [&](const TransformedMLP& m) {
    return [&m, &x](const Tree& params) {
      return jnp::sum(jnp::tanh(m.apply(Tree{{"params", params}}, x)));
    };
  };
  const Tree g1 = grad(loss(normal))(variables.at("params"));
  const Tree g2 = grad(loss(jitted))(variables.at("params"));
  for (const auto& [path, leaf] : tree_leaves_with_path(g1)) {
    EXPECT_TRUE(allclose(leaf, g2.at_path(path).leaf(), 0, 0));
  }
}

// Flax names a lifted class transform.__name__.capitalize() + the target's class name.
struct Lifted : nn::Module<Lifted> {
  Array call(const Array& x) const {
    Array h = nn::remat(nn::Dense{.features = 3})(x);
    return nn::jit(nn::Dense{.features = 2})(h);
  }
};

TEST(NnLifted, ClassNamesAsFlax) {
  const Tree v = Lifted{}.init(random::key(0), jnp::ones({1, 4}));
  EXPECT_EQ(v.at_path({"params", "CheckpointDense_0", "kernel"}).leaf().shape(), (Shape{4, 3}));
  EXPECT_EQ(v.at_path({"params", "JitDense_0", "kernel"}).leaf().shape(), (Shape{3, 2}));
}

int g_traces = 0;
struct CountsCalls : nn::Module<CountsCalls> {
  friend bool operator==(const CountsCalls&, const CountsCalls&) { return true; }
  Array call(const Array& x) const {
    ++g_traces;  // a side effect: under nn::jit it runs when a signature is traced
    return nn::Dense{.features = 2}(x);
  }
};
struct JitsCounter : nn::Module<JitsCounter> {
  Array call(const Array& x) const { return nn::jit(CountsCalls{})(x); }
};

TEST(NnJit, SideEffectsRunAtTraceTimeOnly) {
  const JitsCounter model;
  const Array x = jnp::ones({2, 3});
  const Tree v = model.init(random::key(0), x);
  g_traces = 0;
  // The first apply traces (the effect runs once); later applies with the same signature
  // replay the cached graph, so the effect does not run again. A new shape retraces.
  model.apply(v, x);
  model.apply(v, x * 2.0);
  EXPECT_EQ(g_traces, 1);
  model.apply(v, jnp::ones({5, 3}));
  EXPECT_EQ(g_traces, 2);
}

// Flax lifts the rngs into remat/jit (flax/core/lift.py pack: the inner scope gets the outer
// rngs and shares its rng counters), so a Dropout inside draws the bits of the plain call.
struct DropBlock : nn::Module<DropBlock> {
  bool operator==(const DropBlock&) const = default;
  Array call(const Array& x) const {
    Array h = nn::Dense{.features = 6}(x);
    h = jnp::tanh(nn::Dropout{.rate = 0.5, .deterministic = false}(h));
    return nn::Dense{.features = 3}(nn::Dropout{.rate = 0.3, .deterministic = false}(h));
  }
};

struct DropModel : nn::Module<DropModel> {
  Transform transform = Transform::none;
  Array call(const Array& x) const {
    auto run = [&](const Array& in) {
      switch (transform) {
        case Transform::jit:
          return child("block", nn::jit(DropBlock{}))(in);
        case Transform::remat:
          return child("block", nn::remat(DropBlock{}))(in);
        default:
          return child("block", DropBlock{})(in);
      }
    };
    Array h = run(x);
    h = run(h);  // the same module again: its rng counts continue from the first call's
    return nn::Dropout{.rate = 0.5, .deterministic = false}(h);
  }
};

::testing::AssertionResult same_tree(const Tree& a, const Tree& b) {
  for (const auto& [path, leaf] : tree_leaves_with_path(a)) {
    if (!allclose(leaf, b.at_path(path).leaf(), 0, 0))
      return ::testing::AssertionFailure() << path.front() << "/.../" << path.back();
  }
  return ::testing::AssertionSuccess();
}

TEST(NnLiftedRngs, DropoutUnderRematAndJitDrawsThePlainBits) {
  const Array x = random::normal(random::key(3), {4, 3});
  const Tree variables = DropModel{}.init(random::key(7), x);
  for (int k = 0; k < 2; ++k) {  // a second key: nn::jit replays with the new key's bits
    const nn::ApplyOptions opts{.rngs = {{"dropout", random::key(11 + k)}}};
    const Array plain = DropModel{}.apply(variables, opts, x);
    const Array det = DropModel{}.apply(variables, {.rngs = {{"dropout", random::key(99)}}}, x);
    EXPECT_FALSE(allclose(plain, det, 0, 0));  // the key matters: dropout is on
    for (Transform t : {Transform::remat, Transform::jit}) {
      SCOPED_TRACE(t == Transform::jit ? "jit" : "remat");
      EXPECT_TRUE(allclose(DropModel{.transform = t}.apply(variables, opts, x), plain, 0, 0));
      auto loss = [&](Transform tr) {
        return [&, tr](const Tree& params) {
          return jnp::sum(
              jnp::square(DropModel{.transform = tr}.apply(Tree{{"params", params}}, opts, x)));
        };
      };
      const Tree g_plain = grad(loss(Transform::none))(variables.at("params"));
      const Tree g_lifted = grad(loss(t))(variables.at("params"));
      EXPECT_TRUE(same_tree(g_plain, g_lifted));
    }
  }
}

TEST(NnLiftedRngs, JitOfAStepWithRematDropoutEqualsEager) {
  // The whole loss under loom::jit with the key as an argument: nn::remat inside sees a traced
  // key and still draws the plain call's bits.
  const Array x = random::normal(random::key(3), {4, 3});
  const Tree params = DropModel{}.init(random::key(7), x).at("params");
  auto loss = [x](const Tree& p, const Array& key_data, int transform) {
    const nn::ApplyOptions opts{.rngs = {{"dropout", random::wrap_key_data(key_data)}}};
    return jnp::sum(jnp::square(
        DropModel{.transform = Transform(transform)}.apply(Tree{{"params", p}}, opts, x)));
  };
  auto jloss = jit(loss, {.static_argnums = {2}});
  for (int k = 0; k < 2; ++k) {
    const Array key = random::key_data(random::key(20 + k));
    const Array want = loss(params, key, int(Transform::none));
    EXPECT_TRUE(allclose(jloss(params, key, int(Transform::remat)), want, 0, 0));
    EXPECT_TRUE(allclose(jloss(params, key, int(Transform::jit)), want, 0, 0));
  }
}

}  // namespace
}  // namespace loom
