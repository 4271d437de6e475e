// loom::optim (optax): each optimizer against optax's update equations on hand-computed steps,
// state layouts against optax's NamedTuples as Flax serializes them, schedules, in-place updates.
#include "loom/optim.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.hpp"
#include "test_util.hpp"

namespace {

using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::throws_error;
namespace jnp = loom::numpy;
namespace optim = loom::optim;

Tree params2() {
  return Tree({{"w", f64({1.0, 2.0}, {2})}});
}
Tree grads(double a, double b) {
  return Tree({{"w", f64({a, b}, {2})}});
}
const Array& w(const Tree& t) {
  return t.at("w").leaf();
}

/// Runs tx for the given gradients; returns the params after each step.
std::vector<Tree> run(const optim::GradientTransformation& tx, Tree params,
                      const std::vector<Tree>& gs, Tree* final_state = nullptr) {
  Tree state = tx.init(params);
  std::vector<Tree> out;
  for (const Tree& g : gs) {
    auto [u, s] = tx.update(g, std::move(state), params);
    state = std::move(s);
    params = optim::apply_updates(std::move(params), u);
    out.push_back(params);
  }
  if (final_state) *final_state = state;
  return out;
}

TEST(Sgd, StateLayoutIsOptaxChainOfTraceAndScale) {
  Tree state = optim::sgd(0.1, 0.9).init(params2());
  // optax: (TraceState(trace=zeros), EmptyState()) -> {"0": {"trace": {...}}, "1": {}}.
  ASSERT_TRUE(state.contains("0") && state.contains("1"));
  EXPECT_EQ(state.size(), 2u);
  EXPECT_TRUE(loom::same_structure(state.at("0").at("trace"), params2()));
  EXPECT_TRUE(allclose(state.at("0").at("trace").at("w").leaf(), f64({0, 0}, {2})));
  EXPECT_TRUE(state.at("1").is_dict() && state.at("1").empty());
  // Without momentum: (EmptyState(), EmptyState()).
  Tree plain = optim::sgd(0.1).init(params2());
  EXPECT_TRUE(plain.at("0").empty() && plain.at("1").empty());
  // A schedule for the learning rate: ScaleByScheduleState(count=int32 0).
  Tree sched = optim::sgd(optim::constant_schedule(0.1), 0.9).init(params2());
  EXPECT_EQ(sched.at("1").at("count").leaf().dtype(), DType::int32);
  EXPECT_EQ(sched.at("1").at("count").leaf().ndim(), 0);
}

TEST(Sgd, PlainSteps) {
  // p <- p - lr g: [1, 2] - 0.1 [0.5, -1] = [0.95, 2.1].
  auto ps = run(optim::sgd(0.1), params2(), {grads(0.5, -1.0)});
  EXPECT_TRUE(allclose(w(ps[0]), f64({0.95, 2.1}, {2}), 1e-15, 1e-15));
}

TEST(Sgd, MomentumStepsByHand) {
  // optax.trace: t1 = g1 = [0.5, -1]; p1 = p0 - 0.1 t1 = [0.95, 2.1].
  // t2 = g2 + 0.9 t1 = [0.55, -0.7]; p2 = [0.895, 2.17].
  // t3 = g3 + 0.9 t2 = [0.495, -0.63] (g3 = 0); p3 = [0.8455, 2.233].
  Tree state;
  auto ps = run(optim::sgd(0.1, 0.9), params2(), {grads(0.5, -1.0), grads(0.1, 0.2), grads(0, 0)},
                &state);
  EXPECT_TRUE(allclose(w(ps[0]), f64({0.95, 2.1}, {2}), 1e-14, 1e-14));
  EXPECT_TRUE(allclose(w(ps[1]), f64({0.895, 2.17}, {2}), 1e-14, 1e-14));
  EXPECT_TRUE(allclose(w(ps[2]), f64({0.8455, 2.233}, {2}), 1e-14, 1e-14));
  EXPECT_TRUE(
      allclose(state.at("0").at("trace").at("w").leaf(), f64({0.495, -0.63}, {2}), 1e-14, 1e-14));
}

TEST(Sgd, NesterovStepsByHand) {
  // nesterov: update = g + 0.9 t_new. Step 1: t = [0.5, -1], u = [0.95, -1.9] -> p = [0.905, 2.19].
  // Step 2: t = [0.55, -0.7], u = [0.1 + 0.495, 0.2 - 0.63] = [0.595, -0.43] -> p =
  // [0.8455, 2.233].
  auto ps = run(optim::sgd(0.1, 0.9, true), params2(), {grads(0.5, -1.0), grads(0.1, 0.2)});
  EXPECT_TRUE(allclose(w(ps[0]), f64({0.905, 2.19}, {2}), 1e-14, 1e-14));
  EXPECT_TRUE(allclose(w(ps[1]), f64({0.8455, 2.233}, {2}), 1e-14, 1e-14));
}

TEST(Sgd, Float32StaysFloat32) {
  Tree p = {{"w", Array({1.f, 2.f})}};
  auto tx = optim::sgd(0.1, 0.9);
  Tree s = tx.init(p);
  auto [u, s2] = tx.update(Tree({{"w", Array({0.5f, -1.f})}}), s, p);
  Tree p2 = optim::apply_updates(p, u);
  EXPECT_EQ(p2.at("w").leaf().dtype(), DType::float32);
  EXPECT_EQ(s2.at("0").at("trace").at("w").leaf().dtype(), DType::float32);
  EXPECT_TRUE(allclose(p2.at("w").leaf(), Array({0.95f, 2.1f})));
}

TEST(Sgd, InPlaceOnlyWhenUnreferenced) {
  auto tx = optim::sgd(0.1, 0.9);
  Tree p = params2();
  Tree s = tx.init(p);
  auto [u1, s1] = tx.update(grads(0.5, -1.0), std::move(s), p);
  // Somebody keeps the old state and params: they must not change.
  const Tree kept_state = s1;
  const Tree kept_params = p;
  const void* trace_buffer = s1.at("0").at("trace").at("w").leaf().raw_data();
  auto [u2, s2] = tx.update(grads(0.1, 0.2), s1, p);
  Tree p2 = optim::apply_updates(p, u2);
  EXPECT_TRUE(allclose(kept_state.at("0").at("trace").at("w").leaf(), f64({0.5, -1.0}, {2})));
  EXPECT_TRUE(allclose(kept_params.at("w").leaf(), f64({1.0, 2.0}, {2})));
  EXPECT_NE(s2.at("0").at("trace").at("w").leaf().raw_data(), trace_buffer);
  // Moved in and not referenced elsewhere: the new trace reuses the old buffer.
  Tree s3_in = std::move(s2);
  const void* buf = s3_in.at("0").at("trace").at("w").leaf().raw_data();
  auto [u3, s3] = tx.update(grads(0.0, 0.0), std::move(s3_in), p2);
  EXPECT_EQ(s3.at("0").at("trace").at("w").leaf().raw_data(), buf);
  const void* pbuf = p2.at("w").leaf().raw_data();
  Tree p3 = optim::apply_updates(std::move(p2), u3);
  EXPECT_EQ(p3.at("w").leaf().raw_data(), pbuf);
}

TEST(Sgd, StructureMismatchIsAnError) {
  auto tx = optim::sgd(0.1, 0.9);
  Tree s = tx.init(params2());
  EXPECT_TRUE(throws_error(
      [&] {
        tx.update(Tree({{"v", f64({1, 2}, {2})}}), s, std::nullopt);
      },
      {"optim.trace", "same tree structure"}));
  EXPECT_TRUE(throws_error(
      [&] {
        tx.update(Tree({{"w", f64({1, 2, 3}, {3})}}), s, std::nullopt);
      },
      {"optim.trace", "matching shapes", "(2,)", "(3,)"}));
  EXPECT_TRUE(throws_error([&] { tx.update(params2(), Tree(), std::nullopt); },
                           {"optim.chain", "2 entries"}));
}

// ---- adaptive optimizers: 3 steps against tests/data/optim_golden.py (optax's equations in
// NumPy float64). Params {"b": [0.3], "w": [1, -2, 0.5]}.
Tree params3() {
  return Tree({{"b", f64({0.3}, {1})}, {"w", f64({1.0, -2.0, 0.5}, {3})}});
}
std::vector<Tree> grads3() {
  return {Tree({{"b", f64({0.2}, {1})}, {"w", f64({0.5, -1.0, 0.25}, {3})}}),
          Tree({{"b", f64({-0.1}, {1})}, {"w", f64({0.1, 0.2, -0.3}, {3})}}),
          Tree({{"b", f64({0.05}, {1})}, {"w", f64({-0.4, 0.6, 0.0}, {3})}})};
}
void expect_params(const Tree& p, double b, std::vector<double> wv, double tol = 1e-12) {
  EXPECT_TRUE(allclose(p.at("b").leaf(), f64({b}, {1}), tol, tol));
  EXPECT_TRUE(allclose(p.at("w").leaf(), f64(std::move(wv), {3}), tol, tol));
}
void expect_adam_moments(const Tree& s) {
  EXPECT_EQ(s.at("count").leaf().item<int>(), 3);
  EXPECT_EQ(s.at("count").leaf().dtype(), DType::int32);
  EXPECT_TRUE(allclose(s.at("mu").at("b").leaf(), f64({0.0122}, {1}), 1e-12, 1e-15));
  EXPECT_TRUE(
      allclose(s.at("mu").at("w").leaf(), f64({0.0095, -0.003, -0.00675}, {3}), 1e-12, 1e-15));
  EXPECT_TRUE(allclose(s.at("nu").at("b").leaf(), f64({5.241004000000006e-05}, {1}), 1e-12, 1e-15));
  EXPECT_TRUE(allclose(s.at("nu").at("w").leaf(),
                       f64({0.00041949025, 0.001397961, 0.0001522850625}, {3}), 1e-12, 1e-15));
}
std::vector<std::string> keys(const Tree& t) {
  std::vector<std::string> k;
  for (const auto& [key, sub] : t.dict()) k.push_back(key);
  return k;
}
using Keys = std::vector<std::string>;

TEST(Adam, ThreeStepsAndOptaxStateLayout) {
  Tree s;
  auto ps = run(optim::adam(0.1), params3(), grads3(), &s);
  expect_params(ps[2], 0.13932339047207684,
                {0.8103259663582117, -1.8472765251497512, 0.4253441451669423});
  // optax: (ScaleByAdamState(count, mu, nu), EmptyState()).
  EXPECT_EQ(keys(s), (Keys{"0", "1"}));
  EXPECT_EQ(keys(s.at("0")), (Keys{"count", "mu", "nu"}));
  EXPECT_TRUE(s.at("1").empty());
  expect_adam_moments(s.at("0"));
}

TEST(Adam, Float32FollowsTheFloat64Golden) {
  auto to32 = [](const Tree& t) {
    return loom::tree_map([](const Array& a) { return a.astype(DType::float32); }, t);
  };
  std::vector<Tree> g32;
  for (const Tree& g : grads3()) g32.push_back(to32(g));
  Tree s;
  auto ps = run(optim::adam(0.1), to32(params3()), g32, &s);
  EXPECT_EQ(ps[2].at("w").leaf().dtype(), DType::float32);
  EXPECT_EQ(s.at("0").at("mu").at("w").leaf().dtype(), DType::float32);
  EXPECT_TRUE(allclose(ps[2].at("w").leaf(),
                       Array({0.8103259663582117f, -1.8472765251497512f, 0.4253441451669423f}),
                       1e-5, 1e-6));
}

TEST(Adam, FirstStepIsMinusLrTimesSign) {
  // Bias correction makes the first Adam step -lr * g / (|g| + eps'): ~ -lr * sign(g).
  auto ps = run(optim::adam(0.1), params3(), {grads3()[0]});
  expect_params(ps[0], 0.2, {0.9, -1.9, 0.4}, 1e-6);
}

TEST(Adam, NesterovFirstStep) {
  // nesterov: mu_hat = b1 mu / (1 - b1^2) + (1 - b1) g / (1 - b1); with mu = 0.1 g at step 1:
  // (0.09 / 0.19 + 1) g, nu_hat = g^2, so the step is -lr (0.09 / 0.19 + 1) sign(g).
  auto ps = run(optim::adam(0.1, {.nesterov = true}), params3(), {grads3()[0]});
  const double k = 0.1 * (0.09 / 0.19 + 1.0);
  expect_params(ps[0], 0.3 - k, {1.0 - k, -2.0 + k, 0.5 - k}, 1e-6);
}

TEST(AdamW, ThreeStepsWithAndWithoutMask) {
  Tree s;
  auto ps = run(optim::adamw(0.1, {.weight_decay = 0.01}), params3(), grads3(), &s);
  expect_params(ps[2], 0.13865082386436317,
                {0.8076091694498291, -1.8415335257547616, 0.42403125018639853});
  EXPECT_EQ(keys(s), (Keys{"0", "1", "2"}));
  expect_adam_moments(s.at("0"));
  EXPECT_TRUE(s.at("1").empty() && s.at("2").empty());
  // A mask (Tree of bools) that decays only "w": "b" follows plain Adam.
  Tree mask = {{"b", Array::scalar(false)}, {"w", Array::scalar(true)}};
  Tree sm;
  auto pm = run(optim::adamw(0.1, {.weight_decay = 0.01, .mask = mask}), params3(), grads3(), &sm);
  expect_params(pm[2], 0.13932339047207684,
                {0.8076091694498291, -1.8415335257547616, 0.42403125018639853});
  // optax.masked wraps the state: MaskedState(inner_state=EmptyState()).
  EXPECT_EQ(keys(sm.at("1")), (Keys{"inner_state"}));
  // The same mask as a function of the params.
  optim::Mask fn = std::function<Tree(const Tree&)>([](const Tree& p) {
    return loom::tree_map([](const Array& a) { return Array::scalar(a.size() > 1); }, p);
  });
  auto pf = run(optim::adamw(0.1, {.weight_decay = 0.01, .mask = fn}), params3(), grads3());
  EXPECT_TRUE(allclose(pf[2].at("b").leaf(), pm[2].at("b").leaf(), 0, 0));
  EXPECT_TRUE(allclose(pf[2].at("w").leaf(), pm[2].at("w").leaf(), 0, 0));
}

TEST(Masked, PrefixMaskAndMaskedNodesInTheState) {
  // A bool leaf covers a whole subtree; masked-out leaves are optax's MaskedNode in the inner
  // state, which Flax serializes as an empty dict.
  Tree p = {{"Dense_0", {{"bias", f64({0.0}, {1})}, {"kernel", f64({1.0, 2.0}, {2})}}},
            {"Dense_1", {{"kernel", f64({3.0}, {1})}}}};
  Tree mask = {{"Dense_0", Array::scalar(true)}, {"Dense_1", Array::scalar(false)}};
  auto tx = optim::masked(optim::trace(0.5), mask);
  Tree s = tx.init(p);
  EXPECT_EQ(keys(s), (Keys{"inner_state"}));
  const Tree& tr = s.at("inner_state").at("trace");
  EXPECT_EQ(tr.at("Dense_0").at("kernel").leaf().shape(), (Shape{2}));
  // optax's mask_pytree: a false prefix replaces the whole subtree by one MaskedNode.
  EXPECT_TRUE(tr.at("Dense_1").is_dict() && tr.at("Dense_1").empty());
  Tree g = loom::tree_map([](const Array& a) { return jnp::ones_like(a); }, p);
  auto [u1, s1] = tx.update(g, s, p);
  auto [u2, s2] = tx.update(g, s1, p);
  // Traced leaves: 1 then 1 + 0.5; the masked-out leaf passes the gradient through.
  EXPECT_TRUE(allclose(u2.at("Dense_0").at("kernel").leaf(), f64({1.5, 1.5}, {2}), 0, 0));
  EXPECT_TRUE(allclose(u2.at("Dense_1").at("kernel").leaf(), f64({1.0}, {1}), 0, 0));
}

TEST(AdamW, NeedsParams) {
  auto tx = optim::adamw(0.1);
  Tree s = tx.init(params3());
  EXPECT_TRUE(throws_error([&] { tx.update(grads3()[0], s, std::nullopt); },
                           {"add_decayed_weights", "needs the params"}));
  Tree bad_mask = {{"w", Array::scalar(true)}};
  EXPECT_TRUE(throws_error([&] { optim::adamw(0.1, {.mask = bad_mask}).init(params3()); },
                           {"optim.masked", "mask"}));
}

TEST(Rmsprop, ThreeSteps) {
  Tree s;
  auto ps = run(optim::rmsprop(0.1), params3(), grads3(), &s);
  expect_params(ps[2], 0.05575087204949646,
                {0.8260693307019816, -1.9217787315832477, 0.43184187133345675});
  // optax: (ScaleByRmsState(nu), EmptyState(), EmptyState() from identity()).
  EXPECT_EQ(keys(s), (Keys{"0", "1", "2"}));
  EXPECT_EQ(keys(s.at("0")), (Keys{"nu"}));
  EXPECT_TRUE(allclose(s.at("0").at("nu").at("w").leaf(),
                       f64({0.03715, 0.12059999999999998, 0.0131625}, {3}), 1e-12, 1e-15));
  Tree with_momentum = optim::rmsprop(0.1, {.momentum = 0.9}).init(params3());
  EXPECT_EQ(keys(with_momentum.at("2")), (Keys{"trace"}));
  Tree bc;
  auto pb = run(optim::rmsprop(0.1, {.bias_correction = true}), params3(), grads3(), &bc);
  expect_params(pb[2], 0.2249838651432484,
                {0.9796008646546204, -2.0183762588403247, 0.5081309756887571});
  // ScaleByRmsWithCountState(count, nu).
  EXPECT_EQ(keys(bc.at("0")), (Keys{"count", "nu"}));
  EXPECT_EQ(bc.at("0").at("count").leaf().item<int>(), 3);
}

TEST(Adagrad, ThreeSteps) {
  Tree s;
  auto ps = run(optim::adagrad(0.1), params3(), grads3(), &s);
  expect_params(ps[2], 0.25956396728032316,
                {0.9542879365377935, -1.9723752540420991, 0.49768487137803263});
  EXPECT_EQ(keys(s.at("0")), (Keys{"sum_of_squares"}));
  EXPECT_TRUE(allclose(s.at("0").at("sum_of_squares").at("w").leaf(), f64({0.52, 1.5, 0.2525}, {3}),
                       1e-12, 1e-15));
}

TEST(Lamb, ThreeSteps) {
  Tree s;
  auto ps = run(optim::lamb(0.1, {.weight_decay = 0.01}), params3(), grads3(), &s);
  expect_params(ps[2], 0.2187, {0.5655601625473876, -1.710244252266317, 0.5348657698077515}, 1e-9);
  // optax: (adam, add_decayed_weights, scale_by_trust_ratio, scale_by_learning_rate).
  EXPECT_EQ(keys(s), (Keys{"0", "1", "2", "3"}));
  expect_adam_moments(s.at("0"));
}

TEST(Lion, ThreeSteps) {
  Tree s;
  auto ps = run(optim::lion(0.1), params3(), grads3(), &s);
  expect_params(ps[2], 0.19992000799969994,
                {0.8997300289990001, -2.099410058998, 0.5998600139995001});
  EXPECT_EQ(keys(s.at("0")), (Keys{"count", "mu"}));
  EXPECT_TRUE(allclose(s.at("0").at("mu").at("w").leaf(),
                       f64({0.0018905, -0.001821, -0.00051975}, {3}), 1e-12, 1e-15));
}

TEST(ClipByGlobalNorm, ScalesOnlyAboveTheNorm) {
  // Global norm of {3, 4} and {0}: 5.
  Tree g = {{"a", f64({3.0}, {1})}, {"b", f64({4.0, 0.0}, {2})}};
  EXPECT_NEAR(optim::global_norm(g).item<double>(), 5.0, 1e-15);
  auto [u, s] = optim::clip_by_global_norm(1.0).update(g, Tree(), std::nullopt);
  EXPECT_TRUE(allclose(u.at("a").leaf(), f64({0.6}, {1}), 1e-15, 1e-15));
  EXPECT_TRUE(allclose(u.at("b").leaf(), f64({0.8, 0.0}, {2}), 1e-15, 1e-15));
  EXPECT_TRUE(s.empty());
  auto [v, s2] = optim::clip_by_global_norm(10.0).update(g, Tree(), std::nullopt);
  EXPECT_TRUE(allclose(v.at("b").leaf(), f64({4.0, 0.0}, {2}), 0, 0));
}

TEST(Chain, ClipThenSgdStateAndValues) {
  auto tx = optim::chain({optim::clip_by_global_norm(1.0), optim::sgd(1.0)});
  Tree p = {{"a", f64({0.0}, {1})}, {"b", f64({0.0, 0.0}, {2})}};
  Tree g = {{"a", f64({3.0}, {1})}, {"b", f64({4.0, 0.0}, {2})}};
  Tree s = tx.init(p);
  EXPECT_EQ(keys(s), (Keys{"0", "1"}));
  EXPECT_EQ(keys(s.at("1")), (Keys{"0", "1"}));  // a nested chain nests the tuple
  auto [u, s2] = tx.update(g, s, p);
  EXPECT_TRUE(
      allclose(optim::apply_updates(p, u).at("b").leaf(), f64({-0.8, 0.0}, {2}), 1e-15, 1e-15));
}

TEST(ScaleByLearningRate, ScheduleCountLivesInTheState) {
  // lr(t) = 0.1 (t + 1): steps of 0.1 g then 0.2 g; count 0 -> 1 -> 2 (ScaleByScheduleState).
  auto tx = optim::sgd(optim::Schedule([](std::int64_t t) { return 0.1 * double(t + 1); }));
  Tree s;
  auto ps = run(tx, params2(), {grads(1.0, 1.0), grads(1.0, -1.0)}, &s);
  EXPECT_TRUE(allclose(w(ps[0]), f64({0.9, 1.9}, {2}), 1e-15, 1e-15));
  EXPECT_TRUE(allclose(w(ps[1]), f64({0.7, 2.1}, {2}), 1e-14, 1e-14));
  EXPECT_EQ(s.at("1").at("count").leaf().item<int>(), 2);
  EXPECT_EQ(optim::safe_increment(Array::scalar(std::int32_t{2147483647})).item<int>(), 2147483647);
}

TEST(Schedules, ValuesAsOptax) {
  // optax/schedules/_schedule.py piecewise_constant_schedule docstring: 1.0, 0.1, 0.001 at
  // steps 50, 150, 250 for init 1.0 and {100: 0.1, 200: 0.01}.
  auto pc = optim::piecewise_constant_schedule(1.0, {{100, 0.1}, {200, 0.01}});
  EXPECT_DOUBLE_EQ(pc(50), 1.0);
  EXPECT_DOUBLE_EQ(pc(100), 0.1);
  EXPECT_DOUBLE_EQ(pc(150), 0.1);
  EXPECT_NEAR(pc(250), 0.001, 1e-18);
  auto lin = optim::linear_schedule(1.0, 0.0, 10, 5);
  EXPECT_DOUBLE_EQ(lin(0), 1.0);
  EXPECT_DOUBLE_EQ(lin(10), 0.5);
  EXPECT_DOUBLE_EQ(lin(100), 0.0);
  auto cos = optim::cosine_decay_schedule(2.0, 10, 0.1);
  EXPECT_DOUBLE_EQ(cos(0), 2.0);
  EXPECT_NEAR(cos(5), 2.0 * (0.9 * 0.5 + 0.1), 1e-15);
  EXPECT_NEAR(cos(50), 0.2, 1e-15);
  auto wc = optim::warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, 0.1);
  EXPECT_DOUBLE_EQ(wc(0), 0.0);
  EXPECT_DOUBLE_EQ(wc(5), 0.5);
  EXPECT_DOUBLE_EQ(wc(10), 1.0);
  EXPECT_NEAR(wc(60), 0.55, 1e-15);
  EXPECT_NEAR(wc(110), 0.1, 1e-15);
  auto ex = optim::exponential_decay(1.0, 10, 0.5);
  EXPECT_DOUBLE_EQ(ex(0), 1.0);
  EXPECT_NEAR(ex(5), std::sqrt(0.5), 1e-15);
  EXPECT_DOUBLE_EQ(ex(20), 0.25);
  auto st = optim::exponential_decay(1.0, 10, 0.5,
                                     {.transition_begin = 5, .staircase = true, .end_value = 0.3});
  EXPECT_DOUBLE_EQ(st(5), 1.0);
  EXPECT_DOUBLE_EQ(st(14), 1.0);
  EXPECT_DOUBLE_EQ(st(15), 0.5);
  EXPECT_DOUBLE_EQ(st(40), 0.3);
  auto j = optim::join_schedules(
      {optim::constant_schedule(1.0), optim::linear_schedule(2.0, 0.0, 4)}, {3});
  EXPECT_DOUBLE_EQ(j(2), 1.0);
  EXPECT_DOUBLE_EQ(j(3), 2.0);
  EXPECT_DOUBLE_EQ(j(5), 1.0);
  EXPECT_TRUE(
      throws_error([] { optim::cosine_decay_schedule(1.0, 0); }, {"decay_steps must be positive"}));
  EXPECT_TRUE(throws_error([] { optim::join_schedules({optim::constant_schedule(1.0)}, {3}); },
                           {"join_schedules", "one boundary fewer"}));
}

TEST(InjectHyperparams, ScheduledAdamMatchesAndStateHoldsTheRate) {
  optim::Schedule lr = [](std::int64_t t) { return 0.1 / double(t + 1); };
  auto tx = optim::inject_hyperparams(
      [](const std::map<std::string, double>& h) { return optim::adam(h.at("learning_rate")); },
      {{"learning_rate", lr}});
  Tree s;
  auto ps = run(tx, params3(), grads3(), &s);
  auto ref = run(optim::adam(lr), params3(), grads3());
  EXPECT_TRUE(allclose(ps[2].at("w").leaf(), ref[2].at("w").leaf(), 1e-15, 1e-15));
  // optax's InjectStatefulHyperparamsState(count, hyperparams, hyperparams_states, inner_state).
  EXPECT_EQ(keys(s), (Keys{"count", "hyperparams", "hyperparams_states", "inner_state"}));
  EXPECT_EQ(s.at("count").leaf().item<int>(), 3);
  EXPECT_DOUBLE_EQ(s.at("hyperparams").at("learning_rate").leaf().item<double>(), 0.1 / 3);
  EXPECT_EQ(s.at("hyperparams_states").at("learning_rate").at("count").leaf().item<int>(), 3);
  EXPECT_EQ(keys(s.at("inner_state").at("0")), (Keys{"count", "mu", "nu"}));
}

TEST(InjectHyperparams, ConstantIsReadBackFromTheState) {
  auto tx = optim::inject_hyperparams(
      [](const std::map<std::string, double>& h) { return optim::sgd(h.at("learning_rate")); },
      {{"learning_rate", 0.1}});
  Tree p = params2();
  Tree s = tx.init(p);
  EXPECT_EQ(s.at("hyperparams").at("learning_rate").leaf().dtype(), DType::float64);
  s.at("hyperparams").set("learning_rate", Array::scalar(0.5, DType::float64));
  auto [u, s2] = tx.update(grads(1.0, -1.0), s, p);
  EXPECT_TRUE(allclose(w(u), f64({-0.5, 0.5}, {2}), 1e-15, 1e-15));
  // float32 params store the rate in float32, as optax's default hyperparam dtype.
  Tree s32 = tx.init(Tree({{"w", Array({1.f})}}));
  EXPECT_EQ(s32.at("hyperparams").at("learning_rate").leaf().dtype(), DType::float32);
}

TEST(AddDecayedWeights, ScheduleKeepsACount) {
  auto tx =
      optim::add_decayed_weights(optim::Schedule([](std::int64_t t) { return 0.5 * double(t); }));
  Tree s = tx.init(params2());
  EXPECT_EQ(keys(s), (Keys{"count"}));
  auto [u1, s1] = tx.update(grads(0, 0), s, params2());  // decay 0 at count 0
  EXPECT_TRUE(allclose(w(u1), f64({0, 0}, {2}), 0, 0));
  auto [u2, s2] = tx.update(grads(0, 0), s1, params2());  // decay 0.5 at count 1
  EXPECT_TRUE(allclose(w(u2), f64({0.5, 1.0}, {2}), 1e-15, 1e-15));
}

}  // namespace
