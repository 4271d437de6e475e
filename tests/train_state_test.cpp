// loom::training::TrainState (flax.training.train_state): a tiny classifier trained with sgd and
// adam (the loss falls, the step counts), Flax's state dict layout, extra collections
// (batch_stats), restore from a state dict, value semantics.
#include "loom/training/train_state.hpp"

#include <gtest/gtest.h>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "loom/optim.hpp"
#include "loom/random.hpp"
#include "test_util.hpp"

namespace {

using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::throws_error;
using loom::testing::wave;
using loom::training::TrainState;
namespace jnp = loom::numpy;
namespace nn = loom::nn;
namespace optim = loom::optim;

struct Data {
  Array x = wave({16, 4}, 0.2, DType::float32);
  // Learnable labels: the argmax of a fixed linear map of x.
  Array y = jnp::argmax(jnp::matmul(x, wave({4, 3}, 1.0, DType::float32)), -1).astype(DType::int32);
};

const nn::Dense kModel{.features = 3};

TrainState make(optim::GradientTransformation tx, Tree extra = Tree()) {
  Data d;
  Tree variables = kModel.init(loom::random::key(0), d.x);
  return TrainState::create([](const Tree& v, const Array& x) { return kModel.apply(v, x); },
                            variables.at("params"), std::move(tx), std::move(extra));
}

double loss_of(const TrainState& s, const Data& d) {
  return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(s.apply(d.x), d.y))
      .item<double>();
}

/// One step of Flax's MNIST example's train_step: value_and_grad of the mean cross entropy.
TrainState train_step(TrainState state, const Data& d) {
  auto loss_fn = [&](const Tree& params) {
    Tree v = state.variables();
    v.set("params", params);
    return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(state.apply_fn(v, d.x), d.y));
  };
  Tree grads = loom::grad(loss_fn)(state.params);
  return std::move(state).apply_gradients(grads);
}

std::vector<std::string> keys(const Tree& t) {
  std::vector<std::string> k;
  for (const auto& [key, sub] : t.dict()) k.push_back(key);
  return k;
}
using Keys = std::vector<std::string>;

TEST(TrainState, SgdMomentumLossFallsAndStepCounts) {
  Data d;
  TrainState s = make(optim::sgd(0.5, 0.9));
  EXPECT_EQ(s.step.dtype(), DType::int32);
  EXPECT_EQ(s.step.item<int>(), 0);
  const double before = loss_of(s, d);
  for (int i = 0; i < 20; ++i) s = train_step(std::move(s), d);
  EXPECT_EQ(s.step.item<int>(), 20);
  EXPECT_LT(loss_of(s, d), 0.8 * before);
  // Flax's layout: {"opt_state": ({"trace": params}, {}), "params", "step"}.
  Tree sd = s.to_state_dict();
  EXPECT_EQ(keys(sd), (Keys{"opt_state", "params", "step"}));
  EXPECT_EQ(keys(sd.at("params")), (Keys{"bias", "kernel"}));
  EXPECT_EQ(keys(sd.at("opt_state")), (Keys{"0", "1"}));
  EXPECT_TRUE(loom::same_structure(sd.at("opt_state").at("0").at("trace"), sd.at("params")));
  EXPECT_TRUE(sd.at("opt_state").at("1").empty());
  EXPECT_EQ(sd.at("params").at("kernel").leaf().shape(), (Shape{4, 3}));
}

TEST(TrainState, AdamLossFallsAndCountMatchesStep) {
  Data d;
  TrainState s = make(optim::adam(0.05));
  const double before = loss_of(s, d);
  for (int i = 0; i < 20; ++i) s = train_step(std::move(s), d);
  EXPECT_LT(loss_of(s, d), 0.8 * before);
  Tree sd = s.to_state_dict();
  EXPECT_EQ(keys(sd.at("opt_state").at("0")), (Keys{"count", "mu", "nu"}));
  EXPECT_EQ(sd.at("opt_state").at("0").at("count").leaf().item<int>(), 20);
  EXPECT_EQ(sd.at("step").leaf().item<int>(), 20);
}

TEST(TrainState, OldStateIsUnchanged) {
  Data d;
  const TrainState s0 = make(optim::sgd(0.5, 0.9));
  const Array k0 = s0.params.at("kernel").leaf();
  const std::vector<float> before = k0.to_vector<float>();
  TrainState s1 = train_step(s0, d);  // s0 is copied in: its buffers are shared, not reused
  EXPECT_EQ(s0.step.item<int>(), 0);
  EXPECT_EQ(s0.params.at("kernel").leaf().to_vector<float>(), before);
  EXPECT_TRUE(allclose(s0.opt_state.at("0").at("trace").at("kernel").leaf(), jnp::zeros({4, 3})));
  EXPECT_EQ(s1.step.item<int>(), 1);
  EXPECT_NE(s1.params.at("kernel").leaf().to_vector<float>(), before);
}

TEST(TrainState, MovedStateIsUpdatedInPlace) {
  Data d;
  TrainState s = make(optim::sgd(0.5, 0.9));
  s = train_step(std::move(s), d);
  const void* kernel = s.params.at("kernel").leaf().raw_data();
  const void* trace = s.opt_state.at("0").at("trace").at("kernel").leaf().raw_data();
  s = train_step(std::move(s), d);
  EXPECT_EQ(s.params.at("kernel").leaf().raw_data(), kernel);
  EXPECT_EQ(s.opt_state.at("0").at("trace").at("kernel").leaf().raw_data(), trace);
}

TEST(TrainState, ExtraCollectionsLikeFlaxBatchStats) {
  // Flax's ImageNet example: class TrainState(train_state.TrainState): batch_stats: Any, and
  // state.apply_gradients(grads=grads, batch_stats=new_batch_stats).
  Tree bs = {{"mean", jnp::zeros({3})}};
  TrainState s = make(optim::sgd(0.1), {{"batch_stats", bs}});
  EXPECT_EQ(keys(s.variables()), (Keys{"batch_stats", "params"}));
  Tree grads = loom::tree_map([](const Array& a) { return jnp::ones_like(a); }, s.params);
  Tree new_bs = {{"mean", jnp::ones({3})}};
  TrainState s1 = s.apply_gradients(grads, {{"batch_stats", new_bs}});
  EXPECT_TRUE(allclose(s1.extra.at("batch_stats").at("mean").leaf(), jnp::ones({3})));
  EXPECT_TRUE(allclose(s.extra.at("batch_stats").at("mean").leaf(), jnp::zeros({3})));
  EXPECT_TRUE(allclose(s1.params.at("bias").leaf(), jnp::full({3}, -0.1)));
  Tree sd = s1.to_state_dict();
  EXPECT_EQ(keys(sd), (Keys{"batch_stats", "opt_state", "params", "step"}));
  EXPECT_TRUE(throws_error(
      [&] {
        s.apply_gradients(grads, {{"batch_stat", new_bs}});
      },
      {"unknown extra collection 'batch_stat'"}));
  EXPECT_TRUE(throws_error(
      [&] {
        make(optim::sgd(0.1), {{"params", bs}});
      },
      {"cannot be named 'params'"}));
}

TEST(TrainState, RestoreFromStateDictResumesIdentically) {
  Data d;
  TrainState a = make(optim::adam(0.05));
  for (int i = 0; i < 3; ++i) a = train_step(std::move(a), d);
  const Tree saved = a.to_state_dict();
  TrainState b = make(optim::adam(0.05)).replace_from_state_dict(saved);
  EXPECT_EQ(b.step.item<int>(), 3);
  for (int i = 0; i < 2; ++i) {
    a = train_step(std::move(a), d);
    b = train_step(std::move(b), d);
  }
  EXPECT_TRUE(allclose(b.params.at("kernel").leaf(), a.params.at("kernel").leaf(), 0, 0));
  EXPECT_TRUE(allclose(b.opt_state.at("0").at("nu").at("bias").leaf(),
                       a.opt_state.at("0").at("nu").at("bias").leaf(), 0, 0));
}

TEST(TrainState, RestoreErrorsNameThePath) {
  TrainState s = make(optim::sgd(0.1, 0.9));
  Tree sd = s.to_state_dict();
  Tree wrong_shape = sd;
  wrong_shape.at("params").set("kernel", jnp::zeros({3, 4}));
  EXPECT_TRUE(throws_error([&] { s.replace_from_state_dict(wrong_shape); },
                           {"'params/kernel'", "float32(3, 4)", "expected float32(4, 3)"}));
  Tree missing = sd;
  missing.at("opt_state").at("0").dict().erase("trace");
  EXPECT_TRUE(
      throws_error([&] { s.replace_from_state_dict(missing); }, {"lacks 'opt_state/0/trace'"}));
  Tree extra_key = sd;
  extra_key.set("foo", jnp::zeros({1}));
  EXPECT_TRUE(
      throws_error([&] { s.replace_from_state_dict(extra_key); }, {"unexpected key 'foo'"}));
}

}  // namespace
