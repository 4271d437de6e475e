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

}  // namespace
