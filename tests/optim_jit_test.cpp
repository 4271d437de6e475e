// A jitted training step with each optimizer of loom/optim/alias.hpp: (params, opt_state, batch)
// -> (params, opt_state, loss) under loom::jit equals the eager step bit for bit over 5 steps
// (the graph replays the very primitives the eager step runs, on the same values), with one
// trace. The schedules' Array forms (what a jitted step evaluates on the traced count) against
// optax's published values (optax/schedules/_schedule_test.py) and against their host forms.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "loom/jit.hpp"
#include "loom/loom.hpp"
#include "loom/optim.hpp"
#include "test_util.hpp"

namespace {

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::throws_error;
namespace jnp = loom::numpy;
namespace optim = loom::optim;

/// Same structure, shapes, dtypes and bits (every value compared exactly, as float64).
::testing::AssertionResult same_bits(const Tree& a, const Tree& b) {
  if (!loom::same_structure(a, b))
    return ::testing::AssertionFailure() << "structures differ:\n" << a.str() << "\n" << b.str();
  auto la = loom::tree_leaves_with_path(a);
  auto lb = loom::tree_leaves(b);
  for (std::size_t i = 0; i < la.size(); ++i) {
    const Array& x = la[i].second;
    const Array& y = lb[i];
    std::string where;
    for (const auto& k : la[i].first) where += "/" + k;
    if (x.shape() != y.shape() || x.dtype() != y.dtype())
      return ::testing::AssertionFailure() << where << ": shape or dtype differs";
    auto vx = x.astype(DType::float64).to_vector<double>();
    auto vy = y.astype(DType::float64).to_vector<double>();
    for (std::size_t j = 0; j < vx.size(); ++j) {
      if (!(vx[j] == vy[j]))
        return ::testing::AssertionFailure()
               << where << "[" << j << "]: " << vx[j] << " vs " << vy[j];
    }
  }
  return ::testing::AssertionSuccess();
}

Tree init_params() {
  return Tree({{"dense", Tree({{"kernel", loom::random::normal(loom::random::key(0), {4, 3}) * 0.5},
                               {"bias", jnp::full({3}, 0.1)}})},
               {"scale", jnp::full({3}, 1.5)}});
}

Tree batch(int i) {
  return Tree({{"x", loom::random::normal(loom::random::key(10 + i), {8, 4})},
               {"y", loom::random::normal(loom::random::key(20 + i), {8, 3})}});
}

Array loss_fn(const Tree& p, const Tree& b) {
  const Array h = jnp::tanh(jnp::matmul(b.at("x").leaf(), p.at("dense").at("kernel").leaf()) +
                            p.at("dense").at("bias").leaf());
  return jnp::mean(jnp::square(h * p.at("scale").leaf() - b.at("y").leaf()));
}

/// What a user writes: the whole step, value_and_grad + tx.update + apply_updates.
auto make_step(const optim::GradientTransformation& tx) {
  return [tx](const Tree& params, const Tree& opt_state, const Tree& b) {
    auto [loss, grads] = loom::value_and_grad([&](const Tree& p) { return loss_fn(p, b); })(params);
    auto [updates, new_state] = tx.update(grads, opt_state, params);
    return std::make_tuple(optim::apply_updates(params, updates), new_state, loss);
  };
}

/// Five eager steps and five jitted ones from the same start: equal bits at every step, one trace.
void expect_jit_equals_eager(const optim::GradientTransformation& tx) {
  auto step = make_step(tx);
  auto jstep = loom::jit(step);
  Tree pe = init_params(), se = tx.init(pe);
  Tree pj = pe, sj = se;
  for (int i = 0; i < 5; ++i) {
    const Tree b = batch(i);
    auto [p1, s1, l1] = step(pe, se, b);
    auto [p2, s2, l2] = jstep(pj, sj, b);
    EXPECT_TRUE(same_bits(Tree(l1), Tree(l2))) << "loss, step " << i;
    EXPECT_TRUE(same_bits(p1, p2)) << "params, step " << i;
    EXPECT_TRUE(same_bits(s1, s2)) << "opt_state, step " << i;
    pe = p1, se = s1, pj = p2, sj = s2;
  }
  EXPECT_EQ(jstep.cache_misses(), 1u);
  EXPECT_EQ(jstep.cache_hits(), 4u);
  // The parameters moved (the step is not a no-op that would compare equal trivially).
  EXPECT_FALSE(same_bits(pe, init_params()));
}

Tree kernel_mask(const Tree& params) {
  return loom::tree_map([](const Array& p) { return Array::scalar(p.ndim() > 1); }, params);
}

TEST(OptimJit, Sgd) {
  expect_jit_equals_eager(optim::sgd(0.1));
}
TEST(OptimJit, Momentum) {
  expect_jit_equals_eager(optim::sgd(0.1, 0.9));
}
TEST(OptimJit, Nesterov) {
  expect_jit_equals_eager(optim::sgd(0.1, 0.9, /*nesterov=*/true));
}
TEST(OptimJit, Adam) {
  expect_jit_equals_eager(optim::adam(1e-2));
}
TEST(OptimJit, AdamNesterov) {
  expect_jit_equals_eager(optim::adam(1e-2, {.nesterov = true}));
}
TEST(OptimJit, AdamW) {
  expect_jit_equals_eager(optim::adamw(1e-2, {.weight_decay = 1e-2}));
}
TEST(OptimJit, Rmsprop) {
  expect_jit_equals_eager(optim::rmsprop(1e-2));
}
TEST(OptimJit, RmspropBiasCorrectedWithMomentum) {
  expect_jit_equals_eager(optim::rmsprop(1e-2, {.momentum = 0.9, .bias_correction = true}));
}
TEST(OptimJit, Adagrad) {
  expect_jit_equals_eager(optim::adagrad(1e-1));
}
TEST(OptimJit, Lion) {
  expect_jit_equals_eager(optim::lion(1e-3));
}
TEST(OptimJit, Lamb) {
  expect_jit_equals_eager(optim::lamb(1e-2, {.weight_decay = 1e-2}));
}

TEST(OptimJit, ChainWithClipByGlobalNorm) {
  // 0.05 clips (the first gradient's norm is above it); 1e3 never clips.
  const Tree p0 = init_params(), b0 = batch(0);
  const Tree g0 = loom::grad([&](const Tree& p) { return loss_fn(p, b0); })(p0);
  const double n0 = optim::global_norm(g0).astype(DType::float64).item<double>();
  ASSERT_GT(n0, 0.05);
  ASSERT_LT(n0, 1e3);
  expect_jit_equals_eager(optim::chain({optim::clip_by_global_norm(0.05), optim::adam(1e-2)}));
  expect_jit_equals_eager(optim::chain({optim::clip_by_global_norm(1e3), optim::sgd(0.1, 0.9)}));
}

TEST(OptimJit, ScheduledAdamWarmupCosine) {
  expect_jit_equals_eager(optim::adam(optim::warmup_cosine_decay_schedule(0.0, 1e-2, 2, 10)));
}

TEST(OptimJit, ScheduledSgdAndWeightDecay) {
  expect_jit_equals_eager(
      optim::sgd(optim::join_schedules({optim::exponential_decay(0.1, 2, 0.5, {.staircase = true}),
                                        optim::piecewise_constant_schedule(0.05, {{1, 0.5}})},
                                       {3}),
                 0.9));
  expect_jit_equals_eager(
      optim::adamw(1e-2, {.weight_decay = optim::linear_schedule(1e-2, 0.0, 4)}));
}

TEST(OptimJit, MaskedAdamW) {
  const Tree mask = kernel_mask(init_params());
  expect_jit_equals_eager(optim::adamw(1e-2, {.weight_decay = 0.1, .mask = mask}));
  // A function mask is evaluated at trace time on the traced params' structure: a constant.
  expect_jit_equals_eager(optim::adamw(
      1e-2,
      {.weight_decay = 0.1, .mask = optim::Mask(std::function<Tree(const Tree&)>(kernel_mask))}));
}

TEST(OptimJit, UserArraySchedule) {
  // A user schedule in loom ops on the count traces: 0.1 / (1 + count).
  optim::Schedule lr = [](const Array& count) {
    return 0.1 / (1.0 + count.astype(DType::float64));
  };
  EXPECT_TRUE(lr.traceable());
  EXPECT_DOUBLE_EQ(lr(3), 0.025);  // its host form evaluates it on a concrete count
  expect_jit_equals_eager(optim::adam(lr));
}

TEST(OptimJit, HostScheduleIsAClearErrorUnderJitAndWorksEagerly) {
  optim::Schedule lr = [](std::int64_t t) { return 0.1 / double(t + 1); };
  EXPECT_FALSE(lr.traceable());
  auto tx = optim::adam(lr);
  auto step = make_step(tx);
  Tree p = init_params(), s = tx.init(p);
  EXPECT_NO_THROW(step(p, s, batch(0)));
  auto jstep = loom::jit(step);
  EXPECT_TRUE(throws_error(
      [&] { jstep(p, s, batch(0)); },
      {"optim.Schedule", "host function", "cannot trace", "const loom::Array& count"}));
}

TEST(OptimJit, ClipByGlobalNormSelectsUnderJit) {
  // Analytic: updates (3, 4) have norm 5; max_norm 1 scales them to (0.6, 0.8), 10 keeps them.
  for (double max_norm : {1.0, 10.0}) {
    auto tx = optim::clip_by_global_norm(max_norm);
    auto f = loom::jit([tx](const Tree& u) { return tx.update(u, Tree(), std::nullopt).first; });
    const Tree u = Tree({{"a", Array({3.0f, 4.0f})}});
    const std::vector<float> got = f(u).at("a").leaf().to_vector<float>();
    const std::vector<float> want =
        max_norm < 5 ? std::vector<float>{0.6f, 0.8f} : std::vector<float>{3.0f, 4.0f};
    EXPECT_NEAR(got[0], want[0], 1e-7);
    EXPECT_NEAR(got[1], want[1], 1e-7);
  }
}

TEST(OptimJit, SafeIncrementSaturatesAtInt32Max) {
  const auto max = std::numeric_limits<std::int32_t>::max();
  EXPECT_EQ(optim::safe_increment(Array::scalar(std::int32_t{41})).item<std::int32_t>(), 42);
  EXPECT_EQ(optim::safe_increment(Array::scalar(max)).item<std::int32_t>(), max);
  auto inc = loom::jit([](const Array& c) { return optim::safe_increment(c); });
  EXPECT_EQ(inc(Array::scalar(std::int32_t{7})).item<std::int32_t>(), 8);
  EXPECT_EQ(inc(Array::scalar(max)).item<std::int32_t>(), max);
  EXPECT_EQ(inc(Array::scalar(max)).dtype(), DType::int32);
}

// ---- schedules: the Array form ----------------------------------------------------------------

/// The Array form at each count, eagerly and under jit (one trace).
std::vector<double> traced_values(const optim::Schedule& s, const std::vector<int>& counts) {
  auto f = loom::jit([s](const Array& c) { return s(c); });
  std::vector<double> out;
  for (int c : counts) {
    const Array count = Array::scalar(std::int32_t(c));
    const double eager = s(count).item<double>();
    const double jitted = f(count).item<double>();
    EXPECT_EQ(eager, jitted) << "count " << c;
    out.push_back(jitted);
  }
  EXPECT_EQ(f.cache_misses(), 1u);
  return out;
}

TEST(ScheduleArrayForm, CosineWithExponentAsOptax) {
  // optax/schedules/_schedule_test.py, CosineDecayTest.test_with_exponent.
  auto s = optim::cosine_decay_schedule(0.1, 100, 0.0, 2.0);
  const std::vector<double> want = {0.1, 0.09516553580760956, 0.025, 0.0021446612663567066, 0.0};
  const std::vector<double> got = traced_values(s, {0, 10, 50, 75, 100});
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-8 + 1e-6 * std::abs(want[i])) << i;
}

TEST(ScheduleArrayForm, WarmupCosineWithExponentAsOptax) {
  // optax/schedules/_schedule_test.py, WarmupCosineDecayTest.test_with_exponent (optax's
  // float32 values, hence rtol 1e-6 as there).
  auto s = optim::warmup_cosine_decay_schedule(0.2, 1.21, 50, 100, -3.0, 2.0);
  const std::vector<double> want = {0.20000004768371582, 0.4020000100135803, 1.2100000381469727,
                                    -1.947500228881836, -3.000000238418579};
  const std::vector<double> got = traced_values(s, {0, 10, 50, 75, 100});
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-8 + 1e-6 * std::abs(want[i])) << i;
}

TEST(ScheduleArrayForm, PiecewiseConstantAsOptax) {
  // optax/schedules/_schedule_test.py, PiecewiseConstantTest.test_positive.
  auto s = optim::piecewise_constant_schedule(0.1, {{3, 2.0}, {6, 0.5}});
  const std::vector<double> want = {0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1};
  const std::vector<double> got = traced_values(s, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << i;
}

TEST(ScheduleArrayForm, PolynomialWithBeginAsOptax) {
  // optax/schedules/_schedule_test.py, PolynomialTest.test_with_decay_begin:
  // 30 for 4 steps, then 10 + 20 (1 - n / 10)^2, then 10.
  auto s = optim::polynomial_schedule(30.0, 10.0, 2.0, 10, 4);
  std::vector<int> counts;
  for (int c = 0; c < 20; ++c) counts.push_back(c);
  const std::vector<double> got = traced_values(s, counts);
  for (int c = 0; c < 20; ++c) {
    const double n = std::clamp(c - 4, 0, 10);
    EXPECT_NEAR(got[c], 10.0 + 20.0 * std::pow(1.0 - n / 10.0, 2.0), 1e-12) << c;
  }
}

TEST(ScheduleArrayForm, ExponentialEndValueWithStaircaseAsOptax) {
  // optax/schedules/_schedule_test.py, ExponentialTest.test_end_value_with_staircase:
  // init 1, transition_steps 2, begin 3; expected init * rate^(floor)(n / 2) clipped at end.
  for (auto [rate, end, stair] : {std::tuple{0.2, 0.1, false}, std::tuple{2.0, 3.0, true},
                                  std::tuple{0.2, 0.1, true}, std::tuple{1.0, 0.1, false}}) {
    auto s = optim::exponential_decay(
        1.0, 2, rate, {.transition_begin = 3, .staircase = stair, .end_value = end});
    std::vector<int> counts;
    for (int c = 0; c < 14; ++c) counts.push_back(c);
    const std::vector<double> got = traced_values(s, counts);
    for (int c = 0; c < 14; ++c) {
      double p = c < 3 ? 0.0 : (c - 3) / 2.0;
      if (stair) p = std::floor(p);
      double want = std::pow(rate, p);
      want = rate < 1.0 ? std::max(want, end) : std::min(want, end);
      EXPECT_NEAR(got[c], want, 1e-12) << "rate " << rate << " count " << c;
    }
  }
}

TEST(ScheduleArrayForm, EqualsHostFormExactly) {
  // The Array forms perform the host forms' IEEE operations in the same order.
  const std::vector<optim::Schedule> schedules = {
      optim::constant_schedule(0.3),
      optim::linear_schedule(1.0, 0.1, 17, 3),
      optim::polynomial_schedule(2.0, 0.5, 1.7, 23),
      optim::cosine_decay_schedule(0.7, 31, 0.05, 1.5),
      optim::warmup_cosine_decay_schedule(1e-5, 3e-3, 7, 41, 1e-4),
      optim::exponential_decay(0.9, 5, 0.7, {.transition_begin = 2}),
      optim::exponential_decay(0.9, 5, 0.7, {.staircase = true, .end_value = 0.3}),
      optim::piecewise_constant_schedule(1.0, {{10, 0.1}, {20, 0.3}}),
      optim::join_schedules({optim::linear_schedule(0.0, 1.0, 5), optim::constant_schedule(2.0),
                             optim::cosine_decay_schedule(1.0, 9)},
                            {5, 12}),
  };
  std::vector<int> counts;
  for (int c = 0; c < 60; ++c) counts.push_back(c);
  for (std::size_t k = 0; k < schedules.size(); ++k) {
    EXPECT_TRUE(schedules[k].traceable()) << k;
    const std::vector<double> got = traced_values(schedules[k], counts);
    for (int c : counts) EXPECT_EQ(got[c], schedules[k](std::int64_t(c))) << k << " count " << c;
  }
}

TEST(ScheduleArrayForm, JoinWithAHostPartIsHostOnly) {
  auto j = optim::join_schedules(
      {optim::constant_schedule(1.0), optim::Schedule([](std::int64_t t) { return 0.5 * t; })},
      {3});
  EXPECT_FALSE(j.traceable());
  EXPECT_DOUBLE_EQ(j(5), 1.0);
  // Eagerly the Array call reads the count on the host.
  EXPECT_DOUBLE_EQ(j(Array::scalar(std::int32_t{5})).item<double>(), 1.0);
}

}  // namespace
