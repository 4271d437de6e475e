// loom::jit: replay equals eager bit for bit (every primitive of the op lists, a CNN apply and a
// full training step), on a second call with new inputs (so no input is baked in as a constant),
// plus the cache, retracing, static arguments, side effects, host reads, threads and
// composition with grad and vmap. Golden values: the eager result of the same ops.
#include "loom/jit.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <thread>

#include "loom/loom.hpp"
#include "models/cnn.hpp"
#include "op_list_lax_nn.hpp"
#include "test_util.hpp"

namespace {

namespace jnp = loom::numpy;
namespace optim = loom::optim;
using loom::Array;
using loom::Tree;

bool same_bits(const Array& a, const Array& b) {
  if (a.valid() != b.valid()) return false;
  if (!a.valid()) return true;
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}
bool same_bits(const Tree& a, const Tree& b) {
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  if (la.size() != lb.size()) return false;
  for (std::size_t i = 0; i < la.size(); ++i)
    if (!same_bits(la[i], lb[i])) return false;
  return true;
}
// Within float32 rounding: under jit the fused backward kernels (here softmax cross-entropy's)
// run their composite form (loom/jit.hpp lists them), which may differ in the last bits.
bool near_bits(const Array& a, const Array& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  auto va = a.astype(loom::DType::float64).to_vector<double>();
  auto vb = b.astype(loom::DType::float64).to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i)
    if (!(std::abs(va[i] - vb[i]) <= 1e-6 + 1e-5 * std::abs(vb[i]))) return false;
  return true;
}
bool near_bits(const Tree& a, const Tree& b) {
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  if (la.size() != lb.size()) return false;
  for (std::size_t i = 0; i < la.size(); ++i)
    if (!near_bits(la[i], lb[i])) return false;
  return true;
}

// New values for the floating inputs (scaled by an exact power-of-two ratio, so they stay in
// the same domain for most ops); integer, bool and key inputs are kept.
std::vector<Array> perturbed(const std::vector<Array>& in) {
  std::vector<Array> out;
  for (const Array& a : in) {
    if (loom::is_floating(a.dtype()))
      out.push_back((a * 0.875).astype(a.dtype()));
    else
      out.push_back(a);
  }
  return out;
}

std::vector<loom::testing::OpCase> all_cases() {
  auto cases = loom::testing::numpy_op_cases();
  for (auto& c : loom::testing::lax_nn_op_cases()) cases.push_back(std::move(c));
  return cases;
}

TEST(Jit, EveryOpEqualsEagerOnTwoCalls) {
  for (const auto& c : all_cases()) {
    SCOPED_TRACE(c.name);
    auto fn = c.fn;
    auto f = loom::jit([fn](const std::vector<Array>& in) { return fn(in); });
    try {
      EXPECT_TRUE(same_bits(f(c.inputs), c.fn(c.inputs))) << c.name << " first call";
      const auto in2 = perturbed(c.inputs);
      EXPECT_TRUE(same_bits(f(in2), c.fn(in2))) << c.name << " second call";
      EXPECT_EQ(f.cache_misses(), 1u);
      EXPECT_EQ(f.cache_hits(), 1u);
    } catch (const loom::Error& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
    }
  }
}

TEST(Jit, CacheHitsMissesAndRetraceOnNewShape) {
  int traces = 0;
  auto f = loom::jit([&traces](const Array& x) {
    ++traces;  // a side effect: runs at trace time only
    return jnp::exp(x) * 2.0;
  });
  Array a = loom::testing::wave({3}, 0.1), b = loom::testing::wave({3}, 0.7);
  EXPECT_TRUE(same_bits(f(a), jnp::exp(a) * 2.0));
  EXPECT_TRUE(same_bits(f(b), jnp::exp(b) * 2.0));
  EXPECT_EQ(traces, 1);
  EXPECT_EQ(f.cache_hits(), 1u);
  Array c = loom::testing::wave({2, 2}, 0.3);
  EXPECT_TRUE(same_bits(f(c), jnp::exp(c) * 2.0));
  EXPECT_EQ(traces, 2);
  EXPECT_TRUE(same_bits(f(a.astype(loom::DType::float32)),
                        jnp::exp(a.astype(loom::DType::float32)) * 2.0));
  EXPECT_EQ(traces, 3);
  EXPECT_EQ(f.cache_size(), 3u);
  EXPECT_EQ(f.cache_misses(), 3u);
}

TEST(Jit, StaticArgnumsRetraceOnNewValue) {
  int traces = 0;
  auto f = loom::jit(
      [&traces](const Array& x, int n) {
        ++traces;
        Array y = x;
        for (int i = 0; i < n; ++i) y = jnp::sin(y);  // a host loop on a static value is fine
        return y;
      },
      {.static_argnums = {1}});
  Array x = loom::testing::wave({4}, 0.2);
  EXPECT_TRUE(same_bits(f(x, 2), jnp::sin(jnp::sin(x))));
  EXPECT_TRUE(same_bits(f(x, 2), jnp::sin(jnp::sin(x))));
  EXPECT_EQ(traces, 1);
  EXPECT_TRUE(same_bits(f(x, 3), jnp::sin(jnp::sin(jnp::sin(x)))));
  EXPECT_EQ(traces, 2);
  auto g = loom::jit([](const Array& x, int n) { return x * double(n); });
  EXPECT_TRUE(loom::testing::throws_error([&] { g(x, 2); }, {"static_argnums"}));
}

TEST(Jit, SameArrayTwiceStaysTwoArguments) {
  auto f = loom::jit([](const Array& x, const Array& y) { return x - y; });
  Array a = loom::testing::wave({3}, 0.1), b = loom::testing::wave({3}, 0.9);
  EXPECT_TRUE(same_bits(f(a, a), a - a));
  EXPECT_TRUE(same_bits(f(a, b), a - b));
}

TEST(Jit, HostReadOfTracedValueIsAnError) {
  auto f = loom::jit([](const Array& x) {
    Array s = jnp::sum(x);
    return s.item<double>() > 0 ? x : -x;
  });
  EXPECT_TRUE(loom::testing::throws_error([&] { f(loom::testing::wave({3}, 0.1)); },
                                          {"float64()"}));
  EXPECT_TRUE(loom::testing::throws_error([&] { f(loom::testing::wave({3}, 0.1)); },
                                          {"lax::cond"}));
  // Constants may be read.
  auto g = loom::jit([](const Array& x) {
    Array c = jnp::ones({2});
    return x * c.to_vector<double>()[0];
  });
  Array x = loom::testing::wave({2}, 0.4);
  EXPECT_TRUE(same_bits(g(x), x * 1.0));
}

TEST(Jit, TreesInAndOut) {
  auto f = loom::jit([](const Tree& p, const Array& x) {
    Array y = jnp::tanh(x * p.at("w").leaf() + p.at("b").leaf());
    return std::make_pair(Tree{{"y", y}}, jnp::sum(y));
  });
  Tree p = {{"w", loom::testing::wave({3}, 0.1)}, {"b", loom::testing::wave({3}, 0.5)}};
  for (double s : {1.0, 0.5}) {
    Array x = loom::testing::wave({3}, s);
    auto [t, sum] = f(p, x);
    Array y = jnp::tanh(x * p.at("w").leaf() + p.at("b").leaf());
    EXPECT_TRUE(same_bits(t.at("y").leaf(), y));
    EXPECT_TRUE(same_bits(sum, jnp::sum(y)));
  }
}

TEST(Jit, ComposesWithGrad) {
  auto loss = [](const Array& x) { return jnp::sum(jnp::sin(x) * x); };
  Array a = loom::testing::wave({4}, 0.3), b = loom::testing::wave({4}, 1.1);
  auto jg = loom::jit([&](const Array& x) { return loom::grad(loss)(x); });  // grad inside jit
  auto gj = loom::grad(loom::jit(loss));                                       // grad of jit
  for (const Array& x : {a, b}) {
    Array expect = loom::grad(loss)(x);
    EXPECT_TRUE(same_bits(jg(x), expect));
    EXPECT_TRUE(same_bits(gj(x), expect));
  }
}

TEST(Jit, InsideVmap) {
  auto inner = loom::jit([](const Array& x) { return jnp::exp(x) + x; });
  Array xs = loom::testing::wave({3, 2}, 0.2);
  Array got = loom::vmap([&](const Array& x) { return inner(x); })(xs);
  EXPECT_TRUE(same_bits(got, jnp::exp(xs) + xs));
}

TEST(Jit, ThreadsShareOneGraph) {
  auto f = loom::jit([](const Array& x) { return jnp::sum(jnp::tanh(x) * x); });
  std::vector<Array> xs, expect;
  for (int i = 0; i < 8; ++i) {
    xs.push_back(loom::testing::wave({64}, 0.1 * i));
    expect.push_back(jnp::sum(jnp::tanh(xs.back()) * xs.back()));
  }
  std::vector<int> ok(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      bool all = true;
      for (int rep = 0; rep < 20; ++rep) all = all && same_bits(f(xs[std::size_t(t)]), expect[std::size_t(t)]);
      ok[std::size_t(t)] = all;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_TRUE(ok[std::size_t(t)]) << "thread " << t;
  EXPECT_EQ(f.cache_misses(), 1u);
  EXPECT_EQ(f.cache_hits(), 159u);
}

TEST(Jit, DeadCodeIsRemoved) {
  auto f = loom::jit([](const Array& x) {
    Array unused = jnp::exp(x) * 3.0;
    (void)unused;
    return x + 1.0;
  });
  auto info = f.graph_info(loom::testing::wave({3}, 0.1));
  EXPECT_EQ(info.num_nodes, 1u);
}

// Flax's MNIST CNN (examples/mnist) trained one SGD-momentum step: the jitted step equals the
// eager one to float32 rounding (the fused cross-entropy backward runs its composite form under
// jit), on two consecutive steps with different batches.
struct StepOut {
  Tree params, opt_state;
  Array loss;
};
TEST(Jit, CnnTrainingStepEqualsEager) {
  loom::models::CNN cnn;
  Tree params = cnn.init(loom::random::key(0), jnp::ones({1, 28, 28, 1})).at("params");
  auto tx = optim::sgd(0.1, 0.9);
  Tree opt_state = tx.init(params);
  auto step = [cnn, tx](const Tree& params, const Tree& opt_state, const Array& images,
                        const Array& labels) {
    auto loss_fn = [&](const Tree& p) {
      Array logits = cnn.apply(Tree{{"params", p}}, images);
      return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
    };
    auto [loss, grads] = loom::value_and_grad(loss_fn)(params);
    auto [updates, new_state] = tx.update(grads, opt_state, params);
    return std::make_tuple(optim::apply_updates(params, updates), new_state, loss);
  };
  auto jstep = loom::jit(step);
  Tree pe = params, se = opt_state, pj = params, sj = opt_state;
  for (int i = 0; i < 2; ++i) {
    Array images = loom::random::normal(loom::random::key(10 + i), {4, 28, 28, 1});
    Array labels(std::vector<std::int32_t>{1, 3, 5, 7 - i}, loom::Shape{4});
    auto [p1, s1, l1] = step(pe, se, images, labels);
    auto [p2, s2, l2] = jstep(pj, sj, images, labels);
    EXPECT_TRUE(near_bits(l1, l2)) << "step " << i;
    EXPECT_TRUE(near_bits(p1, p2)) << "step " << i;
    EXPECT_TRUE(near_bits(s1, s2)) << "step " << i;
    pe = p1, se = s1, pj = p2, sj = s2;
  }
  EXPECT_EQ(jstep.cache_hits(), 1u);
}

}  // namespace

namespace {
// Narrows CnnTrainingStepEqualsEager: the gradient alone, on two batches.
TEST(Jit, CnnGradEqualsEager) {
  loom::models::CNN cnn;
  Tree params = cnn.init(loom::random::key(0), jnp::ones({1, 28, 28, 1})).at("params");
  auto g = [cnn](const Tree& p, const Array& images, const Array& labels) {
    return loom::grad([&](const Tree& q) {
      Array logits = cnn.apply(Tree{{"params", q}}, images);
      return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
    })(p);
  };
  auto jg = loom::jit(g);
  for (int i = 0; i < 2; ++i) {
    Array images = loom::random::normal(loom::random::key(10 + i), {4, 28, 28, 1});
    Array labels(std::vector<std::int32_t>{1, 3, 5, 7 - i}, loom::Shape{4});
    Tree a = g(params, images, labels), b = jg(params, images, labels);
    for (auto& [path, leaf] : loom::tree_leaves_with_path(a)) {
      const Array& other = b.at_path(path).leaf();
      EXPECT_TRUE(near_bits(leaf, other)) << "step " << i << " " << path.front() << "/" << path.back();
    }
  }
}
}  // namespace
