// Parity with values Flax publishes: make_rng keys, initialized parameters and a Dropout run.
// Every expected number below is copied from Flax's own documentation (cited per test); none
// comes from loom.
#include <gtest/gtest.h>

#include <vector>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "loom/random.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
namespace rnd = loom::random;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;

namespace {

using Words = std::pair<std::uint32_t, std::uint32_t>;

// Records make_rng keys in call order (the notebook prints them).
thread_local std::vector<Words>* log_keys = nullptr;

struct RNGSubSubModule : nn::Module<RNGSubSubModule> {
  void call() const {
    log_keys->push_back(make_rng("rng_stream").words());
    log_keys->push_back(make_rng("rng_stream").words());
  }
};
struct RNGSubModule : nn::Module<RNGSubModule> {
  bool nested = true;
  void call() const {
    log_keys->push_back(make_rng("rng_stream").words());
    log_keys->push_back(make_rng("rng_stream").words());
    if (nested) RNGSubSubModule{}();
  }
};
struct RNGModule : nn::Module<RNGModule> {
  bool two_children = false;
  void call() const {
    log_keys->push_back(make_rng("rng_stream").words());
    log_keys->push_back(make_rng("rng_stream").words());
    if (two_children) {
      RNGSubModule{.nested = false}();
      RNGSubModule{.nested = false}();
    } else {
      RNGSubModule{}();
    }
  }
};

Array from(const std::vector<float>& v, Shape s) {
  return Array(v, s);
}

}  // namespace

// Flax docs, docs/guides/flax_fundamentals/rng_guide.ipynb, the RNGModule / RNGSubModule /
// RNGSubSubModule cell ("RNGModule, count 1: ... [1428664606 3351135085]" etc.).
TEST(FlaxParity, MakeRngKeysOfNestedModules) {
  std::vector<Words> keys;
  log_keys = &keys;
  RNGModule{}.init(nn::Rngs{{"rng_stream", rnd::key(0)}});
  const std::vector<Words> expected = {
      {1428664606u, 3351135085u}, {3456700291u, 3873160899u},  // RNGModule
      {3858825717u, 2323087578u}, {601859108u, 3782857444u},   // RNGSubModule_0
      {234240654u, 1028548813u},  {3650462303u, 2124609379u},  // RNGSubSubModule_0
  };
  EXPECT_EQ(keys, expected);
  // The next cell: two RNGSubModule siblings, RNGSubModule_0 and RNGSubModule_1.
  keys.clear();
  RNGModule{.two_children = true}.init(nn::Rngs{{"rng_stream", rnd::key(0)}});
  const std::vector<Words> expected2 = {
      {1428664606u, 3351135085u}, {3456700291u, 3873160899u}, {3858825717u, 2323087578u},
      {601859108u, 3782857444u},  {426957352u, 2006350344u},  {4006253729u, 4205356731u},
  };
  EXPECT_EQ(keys, expected2);
  log_keys = nullptr;
}

// rng_guide.ipynb, the "Model" cell after "How self.make_rng works under the hood": Dense with
// kernel_init=jax.random.normal, self.param, two self.variable calls drawing from "params" and
// "other", and a second Dense; init with {'params': key(0), 'other': key(1)} on ones((2, 2)).
// (The notebook sets jax_threefry_partitionable=True, loom's default.)
TEST(FlaxParity, ParamsAndVariablesOfTheRngGuideModel) {
  struct Model : nn::Module<Model> {
    Array call(const Array& input) const {
      nn::initializers::Initializer normal = [](const rnd::Key& k, const Shape& s, DType d) {
        return rnd::normal(k, s, d);
      };
      Array x = nn::Dense{.features = 2, .use_bias = false, .kernel_init = normal}(input);
      param("model_param", normal, x.shape());
      variable("other_collection", "model_variable1",
               [&] { return Tree(rnd::normal(make_rng("params"), x.shape())); });
      variable("other_collection", "model_variable2",
               [&] { return Tree(rnd::normal(make_rng("other"), x.shape())); });
      return nn::Dense{.features = 2, .kernel_init = normal, .bias_init = normal}(x);
    }
  };
  Tree v =
      Model{}.init(nn::Rngs{{"params", rnd::key(0)}, {"other", rnd::key(1)}}, jnp::ones({2, 2}));
  const Tree& p = v.at("params");
  const Tree& o = v.at("other_collection");
  EXPECT_TRUE(allclose(p.at("Dense_0").at("kernel").leaf(),
                       from({-1.6185919f, 0.700908f, -1.3146383f, -0.79342234f}, {2, 2}), 1e-6, 0));
  EXPECT_TRUE(allclose(p.at("model_param").leaf(),
                       from({0.0761425f, -1.6157459f, -1.6857724f, 0.7126891f}, {2, 2}), 1e-6, 0));
  EXPECT_TRUE(allclose(o.at("model_variable1").leaf(),
                       from({0.60175574f, 0.2553228f, 0.27367848f, -2.1975214f}, {2, 2}), 1e-6, 0));
  EXPECT_TRUE(allclose(o.at("model_variable2").leaf(),
                       from({1.6249592f, 0.30813068f, 1.6613585f, 1.0404155f}, {2, 2}), 1e-6, 0));
  EXPECT_TRUE(allclose(p.at("Dense_1").at("kernel").leaf(),
                       from({0.0030665f, 0.29551846f, 0.16670242f, -0.78252524f}, {2, 2}), 1e-6,
                       0));
  EXPECT_TRUE(
      allclose(p.at("Dense_1").at("bias").leaf(), from({1.582462f, 0.15216611f}, {2}), 1e-6, 0));
}

// flax/linen/stochastic.py, the Dropout docstring: an MLP of nn.Dense(4) and
// nn.Dropout(0.5, deterministic=not train), init with key(0) on ones((1, 3)); apply without
// dropout, then with rngs={'dropout': key(1)}. The first output is the column sums of the
// lecun_normal kernel Flax initializes, so this pins Dense's init; the second pins the mask.
TEST(FlaxParity, DropoutDocstringMlp) {
  struct MLP : nn::Module<MLP> {
    Array call(const Array& x, bool train) const {
      Array h = nn::Dense{.features = 4}(x);
      return nn::Dropout{.rate = 0.5, .deterministic = !train}(h);
    }
  };
  MLP model;
  Array x = jnp::ones({1, 3});
  Tree variables = model.init(rnd::key(0), x, false);
  EXPECT_EQ(variables.str(),
            "params/Dense_0/bias: float32[4]\nparams/Dense_0/kernel: float32[3,4]\n");
  EXPECT_TRUE(allclose(model.apply(variables, x, false),
                       from({-0.17875527f, 1.6255447f, -1.2431065f, -0.02554005f}, {1, 4}), 1e-6,
                       1e-7));
  EXPECT_TRUE(allclose(model.apply(variables, {.rngs = {{"dropout", rnd::key(1)}}}, x, true),
                       from({-0.35751054f, 3.2510893f, 0.f, 0.f}, {1, 4}), 1e-6, 1e-7));
}

// flax/linen/linear.py, the Dense docstring: nn.Dense(features=4).init(key(0), ones((1, 3)))
// has {'params': {'bias': (4,), 'kernel': (3, 4)}}; the top-level module has the empty path,
// so its kernel comes from fold_in(key(0), sha1(b"\x01")[:4]) (= make_rng at the root).
TEST(FlaxParity, TopLevelDenseTreeAndKey) {
  nn::Dense layer{.features = 4};
  Tree v = layer.init(rnd::key(0), jnp::ones({1, 3}));
  EXPECT_EQ(v.str(), "params/bias: float32[4]\nparams/kernel: float32[3,4]\n");
  // Same kernel as lecun_normal drawn directly with the root's first params key, whose words
  // rng_guide.ipynb prints as [1428664606 3351135085].
  rnd::Key k = rnd::fold_in(rnd::key(0), 0xbf8b4530u);
  EXPECT_EQ(k.words(), std::make_pair(1428664606u, 3351135085u));
  EXPECT_TRUE(allclose(v.at("params").at("kernel").leaf(),
                       nn::initializers::lecun_normal()(k, {3, 4}, DType::float32), 0, 0));
  EXPECT_TRUE(allclose(v.at("params").at("bias").leaf(), jnp::zeros({4}), 0, 0));
}
