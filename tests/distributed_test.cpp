// loom::distributed in one process (no launcher), and lax::psum/pmean over named axes bound to
// stand-in reducers. The multi-process cases are tests/mpi/distributed_mpi_test.cpp (mpirun).
// Golden values are analytic: a one-process collective is the identity; the shards of 0..n-1
// are written out by hand; the batch statistics of two equal halves average to the whole's.
#include <gtest/gtest.h>

#include <cstdlib>
#include <loom/distributed.hpp>
#include <loom/lax/collectives.hpp>
#include <loom/loom.hpp>
#include <numeric>
#include <vector>

#include "test_util.hpp"

namespace dist = loom::distributed;
namespace jnp = loom::numpy;
namespace lax = loom::lax;
namespace nn = loom::nn;
namespace rnd = loom::random;
using loom::Array;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::throws_error;

namespace {

Tree sample_tree() {
  return Tree{{"w", Array(std::vector<float>{1, 2, 3, 4}, {2, 2})},
              {"b", {{"c", Array(std::vector<double>{0.5}, {1})}}},
              {"n", Array(std::vector<std::int32_t>{7}, {})}};
}

TEST(Distributed, OneProcessWithoutALauncher) {
  EXPECT_EQ(dist::process_index(), 0);
  EXPECT_EQ(dist::process_count(), 1);
  {
    dist::Guard guard;
    EXPECT_TRUE(dist::is_initialized());
    EXPECT_FALSE(dist::mpi_active());
    EXPECT_EQ(dist::process_index(), 0);
    EXPECT_EQ(dist::process_count(), 1);
    dist::initialize();  // idempotent
    dist::barrier();
    dist::check_same("arguments", "anything");
  }
  EXPECT_FALSE(dist::is_initialized());
  dist::shutdown();  // safe when not initialized
}

TEST(Distributed, OneProcessCollectivesAreTheIdentity) {
  dist::Guard guard;
  const Tree t = sample_tree();
  for (auto order : {dist::ReduceOrder::fast, dist::ReduceOrder::deterministic}) {
    EXPECT_EQ(dist::all_reduce_sum(t, {.order = order}).str(), t.str());
    Tree m = dist::all_reduce_mean(t, {.order = order});
    EXPECT_EQ(m.at("w").leaf().to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  }
  EXPECT_EQ(dist::all_reduce_sum(Array(std::vector<float>{2, 3}, {2})).to_vector<float>(),
            (std::vector<float>{2, 3}));
  EXPECT_EQ(dist::broadcast(t, 0).at("b").at("c").leaf().item<double>(), 0.5);
  Tree g = dist::all_gather(t);  // a new leading axis of size process_count()
  EXPECT_EQ(g.at("w").leaf().shape(), (loom::Shape{1, 2, 2}));
  EXPECT_EQ(g.at("w").leaf().to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(g.at("n").leaf().shape(), (loom::Shape{1}));
  EXPECT_TRUE(throws_error([&] { dist::broadcast(t, 1); }, {"broadcast", "root 1", "0..0"}));
  EXPECT_TRUE(throws_error([] { dist::all_reduce_sum(Array()); }, {"all_reduce_sum", "empty"}));
}

TEST(Distributed, ShardOrderSlicesEachGlobalBatch) {
  std::vector<std::int64_t> order(10);
  std::iota(order.begin(), order.end(), 0);
  // Global batches {0,1,2,3}, {4,5,6,7}; the partial {8,9} is dropped.
  EXPECT_EQ(dist::shard_order(order, 4, 0, 2), (std::vector<std::int64_t>{0, 1, 4, 5}));
  EXPECT_EQ(dist::shard_order(order, 4, 1, 2), (std::vector<std::int64_t>{2, 3, 6, 7}));
  EXPECT_EQ(dist::shard_order(order, 4), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_TRUE(throws_error([&] { dist::shard_order(order, 3, 0, 2); },
                           {"shard_order", "global batch size 3", "multiple", "2 processes"}));
  EXPECT_TRUE(
      throws_error([&] { dist::shard_order(order, 4, 2, 2); }, {"shard_order", "process 2 of 2"}));
}

TEST(Distributed, BadTimeoutIsAnError) {
  EXPECT_TRUE(throws_error([] { dist::initialize({.timeout_seconds = 0}); },
                           {"initialize", "timeout_seconds", "positive"}));
  ::setenv("LOOM_DISTRIBUTED_TIMEOUT", "soon", 1);
  EXPECT_TRUE(throws_error([] { dist::initialize(); },
                           {"LOOM_DISTRIBUTED_TIMEOUT", "soon", "positive number"}));
  ::unsetenv("LOOM_DISTRIBUTED_TIMEOUT");
  EXPECT_FALSE(dist::is_initialized());
}

TEST(Distributed, BindAxisNameOverOneProcess) {
  dist::Guard guard({.axis_name = "batch"});
  EXPECT_TRUE(lax::axis_bound("batch"));
  EXPECT_EQ(lax::axis_size("batch"), 1);
  Array x(std::vector<float>{1, -2}, {2});
  EXPECT_EQ(lax::pmean(x, "batch").to_vector<float>(), (std::vector<float>{1, -2}));
  dist::shutdown();
  EXPECT_FALSE(lax::axis_bound("batch"));
}

// ---- lax collectives over a stand-in axis ----

TEST(LaxCollectives, UnboundAxisIsAnError) {
  EXPECT_TRUE(throws_error([] { lax::psum(jnp::ones({2}), "devices"); },
                           {"lax.psum", "unbound axis name \"devices\""}));
  EXPECT_TRUE(throws_error([] { lax::axis_size("devices"); }, {"axis_size", "\"devices\""}));
  EXPECT_TRUE(throws_error([] { lax::bind_axis("x", {.psum = nullptr}); }, {"no psum"}));
  EXPECT_TRUE(throws_error(
      [] { lax::bind_axis("x", {.psum = [](const Array& a) { return a; }, .size = 0}); },
      {"size 0", "at least 1"}));
}

// Two identical members: psum(x) = 2x.
struct TwinAxis {
  TwinAxis() {
    lax::bind_axis("twins", {.psum = [](const Array& a) { return a + a; }, .size = 2});
  }
  ~TwinAxis() { lax::unbind_axis("twins"); }
};

TEST(LaxCollectives, PsumPmeanAndTheirGradients) {
  TwinAxis axis;
  Array x(std::vector<double>{1.5, -3}, {2});
  EXPECT_EQ(lax::psum(x, "twins").to_vector<double>(), (std::vector<double>{3, -6}));
  EXPECT_EQ(lax::pmean(x, "twins").to_vector<double>(), (std::vector<double>{1.5, -3}));
  EXPECT_EQ(lax::pmean(Array(std::vector<std::int32_t>{3}, {1}), "twins").dtype(),
            loom::DType::float32);
  // psum's VJP is psum of the cotangent: d/dx sum(psum(x)^2) = psum(2 * psum(x)) = 4 * 2x * 2.
  Array g =
      loom::grad([](const Array& v) { return jnp::sum(jnp::square(lax::psum(v, "twins"))); })(x);
  EXPECT_TRUE(allclose(g, Array(std::vector<double>{12, -24}, {2}), 0, 0));
  EXPECT_TRUE(loom::testing::grad_matches_fd(
      [](const Array& v) { return jnp::sum(jnp::square(lax::pmean(v, "twins"))); }, x));
}

struct BnModel : nn::Module<BnModel> {
  std::optional<std::string> axis_name;
  Array call(const Array& x) const {
    return nn::BatchNorm{.use_running_average = false, .momentum = 0.9, .axis_name = axis_name}(x);
  }
};

TEST(LaxCollectives, BatchNormAxisNameUsesTheStatisticsOfAllMembers) {
  // Member A holds rows 0..3 of x, member B rows 4..7. A's stand-in axis adds B's local
  // (mean, mean of squares) stack, the one tensor Flax's BatchNorm pmeans: A then normalizes
  // with the statistics of all 8 rows.
  const Array x = rnd::normal(rnd::key(1), {8, 3}) * 2.0 + 0.5;
  const Array a = jnp::slice(x, {{0, 4}}), b = jnp::slice(x, {{4, 8}});
  const Array b_stats = jnp::stack({jnp::mean(b, 0), jnp::mean(jnp::square(b), 0)});
  lax::bind_axis("halves", {.psum = [&](const Array& s) { return s + b_stats; }, .size = 2});
  const BnModel with_axis{.axis_name = "halves"}, plain;
  Tree v = plain.init(rnd::key(0), x);
  auto [ya, ua] = with_axis.apply_mutable(v, {.mutable_collections = "batch_stats"}, a);
  auto [yx, ux] = plain.apply_mutable(v, {.mutable_collections = "batch_stats"}, x);
  lax::unbind_axis("halves");
  EXPECT_TRUE(allclose(ya, jnp::slice(yx, {{0, 4}}), 1e-5, 1e-6));
  EXPECT_TRUE(allclose(ua.at("batch_stats").at("BatchNorm_0").at("mean").leaf(),
                       ux.at("batch_stats").at("BatchNorm_0").at("mean").leaf(), 1e-6, 1e-7));
  EXPECT_TRUE(allclose(ua.at("batch_stats").at("BatchNorm_0").at("var").leaf(),
                       ux.at("batch_stats").at("BatchNorm_0").at("var").leaf(), 1e-6, 1e-7));
  // Init ignores the axis name (Flax's test_batch_norm_multi_init): no binding needed there.
  EXPECT_NO_THROW(with_axis.init(rnd::key(0), a));
}

}  // namespace
