// loom::distributed across processes: run by ctest as
//   mpirun -np 2 --oversubscribe --allow-run-as-root distributed_mpi_test [--fault=stall|dead]
// Golden values are analytic (sums of rank-dependent values), or one process computing the
// same global batch (training), which each rank recomputes itself.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <loom/distributed.hpp>
#include <loom/lax/collectives.hpp>
#include <loom/loom.hpp>
#include <loom/optim.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "models/cnn.hpp"
#include "test_util.hpp"

namespace dist = loom::distributed;
namespace jnp = loom::numpy;
namespace nn = loom::nn;
namespace optim = loom::optim;
namespace rnd = loom::random;
using loom::Array;
using loom::DType;
using loom::Tree;

namespace {

int rank() {
  return dist::process_index();
}

Array f32(std::vector<float> v, loom::Shape s) {
  return Array(v, s);
}

TEST(DistributedMpi, TwoProcesses) {
  EXPECT_EQ(dist::process_count(), 2);
  EXPECT_TRUE(dist::mpi_active());
  EXPECT_TRUE(rank() == 0 || rank() == 1);
}

// Process r contributes (r + 1) * base: the sum is 3 * base, the mean 1.5 * base.
Tree rank_tree() {
  const float k = float(rank() + 1);
  return Tree{{"a", f32({k, 2 * k, 3 * k}, {3})},
              {"b", {{"c", Array(std::vector<double>{k, -k, 0.5 * k, 4 * k}, {2, 2})}}},
              {"n", Array(std::vector<std::int32_t>{rank() + 1}, {})}};
}

TEST(DistributedMpi, AllReduceSumAndMeanOfTrees) {
  for (auto order : {dist::ReduceOrder::fast, dist::ReduceOrder::deterministic}) {
    Tree s = dist::all_reduce_sum(rank_tree(), {.order = order});
    EXPECT_EQ(s.at("a").leaf().to_vector<float>(), (std::vector<float>{3, 6, 9}));
    EXPECT_EQ(s.at("b").at("c").leaf().to_vector<double>(), (std::vector<double>{3, -3, 1.5, 12}));
    EXPECT_EQ(s.at("n").leaf().dtype(), DType::int32);
    EXPECT_EQ(s.at("n").leaf().item<std::int32_t>(), 3);
    Tree m = dist::all_reduce_mean(rank_tree(), {.order = order});
    EXPECT_EQ(m.at("a").leaf().to_vector<float>(), (std::vector<float>{1.5, 3, 4.5}));
    EXPECT_EQ(m.at("b").at("c").leaf().to_vector<double>(),
              (std::vector<double>{1.5, -1.5, 0.75, 6}));
    EXPECT_EQ(m.at("n").leaf().dtype(), DType::float32);  // pmean of integers: true division
    EXPECT_EQ(m.at("n").leaf().item<float>(), 1.5f);
  }
  Array x = dist::all_reduce_sum(f32({float(rank())}, {1}));
  EXPECT_EQ(x.item<float>(), 1.0f);
}

TEST(DistributedMpi, BroadcastAndAllGather) {
  Tree b = dist::broadcast(rank_tree(), /*root=*/1);
  EXPECT_EQ(b.at("a").leaf().to_vector<float>(), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(b.at("n").leaf().item<std::int32_t>(), 2);
  Tree g = dist::all_gather(rank_tree());
  EXPECT_EQ(g.at("a").leaf().shape(), (loom::Shape{2, 3}));
  EXPECT_EQ(g.at("a").leaf().to_vector<float>(), (std::vector<float>{1, 2, 3, 2, 4, 6}));
  EXPECT_EQ(g.at("b").at("c").leaf().shape(), (loom::Shape{2, 2, 2}));
  EXPECT_EQ(g.at("n").leaf().to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 2}));
  EXPECT_TRUE(loom::testing::throws_error([] { dist::broadcast(rank_tree(), 2); },
                                          {"broadcast", "root 2"}));
}

TEST(DistributedMpi, StructureMismatchNamesThePath) {
  Tree t = rank_tree();
  if (rank() == 1) t.at("b").set("c", Array(std::vector<double>(6, 1.0), {2, 3}));
  EXPECT_TRUE(loom::testing::throws_error(
      [&] { dist::all_reduce_sum(t); },
      {"all_reduce_sum", "differ across processes", "\"b/c\"", "float64[2,2]", "float64[2,3]"}));
  Tree u = rank_tree();
  if (rank() == 1) u.set("extra", f32({1}, {1}));
  EXPECT_TRUE(loom::testing::throws_error([&] { dist::all_reduce_mean(u); },
                                          {"all_reduce_mean", "differ across processes", "extra"}));
  // The processes stayed in step: the next collective works.
  EXPECT_EQ(dist::all_reduce_sum(rank_tree()).at("n").leaf().item<std::int32_t>(), 3);
  EXPECT_TRUE(loom::testing::throws_error(
      [&] { dist::check_same("arguments", rank() == 0 ? "--epochs 2" : "--epochs 3"); },
      {"check_same", "arguments", "--epochs 2", "--epochs 3"}));
  dist::check_same("arguments", "--epochs 2");
}

TEST(DistributedMpi, LaxPsumOverProcessesAndItsGradient) {
  dist::bind_axis_name("procs");
  EXPECT_EQ(loom::lax::axis_size("procs"), 2);
  Array x = f32({float(rank() + 1), 10}, {2});
  EXPECT_EQ(loom::lax::psum(x, "procs").to_vector<float>(), (std::vector<float>{3, 20}));
  EXPECT_EQ(loom::lax::pmean(x, "procs").to_vector<float>(), (std::vector<float>{1.5, 10}));
  // d/dx_r sum_j (local loss of j) with loss_j = sum(psum(x) * w_j): psum's transpose is psum,
  // so the cotangent on every x_r is w_0 + w_1 (JAX's psum transpose rule).
  const float w = rank() == 0 ? 1.0f : 2.0f;
  Array g =
      loom::grad([&](const Array& v) { return jnp::sum(loom::lax::psum(v, "procs") * w); })(x);
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{3, 3}));
}

// ---- Data-parallel training against one process ----

struct Mlp : nn::Module<Mlp> {
  std::optional<std::string> axis_name;
  bool batch_norm = false;
  Array call(Array x, bool train) const {
    x = nn::Dense{.features = 6}(x);
    if (batch_norm)
      x = nn::BatchNorm{.use_running_average = !train, .momentum = 0.9, .axis_name = axis_name}(x);
    x = jnp::tanh(x);
    return nn::Dense{.features = 3}(x);
  }
};

struct Data {
  Array x, y;
};
Data make_data(std::int64_t n) {
  auto keys = rnd::split(rnd::key(7));
  return {rnd::normal(keys[0], {n, 4}), rnd::randint(rnd::split(keys[1])[0], {n}, 0, 3)};
}

Array rows(const Array& a, const std::vector<std::int64_t>& idx) {
  std::vector<std::int32_t> i(idx.begin(), idx.end());
  return jnp::take(a, Array(i, {std::int64_t(i.size())}), 0);
}

struct TrainRun {
  Tree params, batch_stats;
};

// `steps` SGD-momentum steps. shards == 0: this process trains on its shard of each global batch
// and the gradients are all_reduce_mean'ed (order `order`). shards > 0: one process walks the
// same global batches alone, either whole (shards == 1) or as `shards` slices whose gradients it
// sums in slice order and divides by `shards` (what the deterministic order reproduces).
TrainRun train(const Mlp& model, int steps, std::int64_t global_batch, int shards,
               dist::ReduceOrder order) {
  const Data d = make_data(64);
  Tree vars = model.init(rnd::key(0), jnp::ones({1, 4}), false);
  Tree params = vars.at("params");
  Tree stats = model.batch_norm ? vars.at("batch_stats") : Tree{};
  auto tx = optim::sgd(0.1, 0.9);
  Tree opt = tx.init(params);
  const auto perm = rnd::permutation(rnd::key(3), 64).to_vector<std::int32_t>();
  const std::vector<std::int64_t> order_v(perm.begin(), perm.end());
  auto grads_of = [&](const std::vector<std::int64_t>& idx, Tree& new_stats) {
    const Array xb = rows(d.x, idx), yb = rows(d.y, idx);
    auto loss_fn = [&](const Tree& p) {
      Tree v{{"params", p}};
      if (model.batch_norm) v.set("batch_stats", stats);
      auto [logits, upd] = model.apply_mutable(v, {.mutable_collections = "batch_stats"}, xb, true);
      Array loss = jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, yb));
      return std::make_pair(loss, upd);
    };
    auto [value, g] = loom::value_and_grad(loss_fn, {.has_aux = true})(params);
    if (model.batch_norm) new_stats = value.second.at("batch_stats");
    return g;
  };
  for (int s = 0; s < steps; ++s) {
    std::vector<std::int64_t> global(order_v.begin() + s * global_batch,
                                     order_v.begin() + (s + 1) * global_batch);
    Tree grads, new_stats;
    if (shards == 0) {
      grads = dist::all_reduce_mean(grads_of(dist::shard_order(global, global_batch), new_stats),
                                    {.order = order});
    } else {
      for (int k = 0; k < shards; ++k) {
        Tree g = grads_of(dist::shard_order(global, global_batch, k, shards), new_stats);
        grads =
            k == 0 ? g
                   : loom::tree_map([](const Array& a, const Array& b) { return a + b; }, grads, g);
      }
      if (shards > 1)
        grads = loom::tree_map([&](const Array& a) { return a / double(shards); }, grads);
    }
    auto [updates, next] = tx.update(grads, std::move(opt), params);
    opt = std::move(next);
    params = optim::apply_updates(std::move(params), updates);
    if (model.batch_norm) stats = new_stats;
  }
  return {params, stats};
}

double max_abs_diff(const Tree& a, const Tree& b) {
  double m = 0;
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  for (std::size_t i = 0; i < la.size(); ++i) {
    auto va = la[i].to_vector<double>(), vb = lb[i].to_vector<double>();
    for (std::size_t j = 0; j < va.size(); ++j) m = std::max(m, std::abs(va[j] - vb[j]));
  }
  return m;
}

bool bit_equal(const Tree& a, const Tree& b) {
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  if (la.size() != lb.size()) return false;
  for (std::size_t i = 0; i < la.size(); ++i) {
    if (la[i].shape() != lb[i].shape() || la[i].dtype() != lb[i].dtype() ||
        std::memcmp(la[i].raw_data(), lb[i].raw_data(), la[i].nbytes()) != 0)
      return false;
  }
  return true;
}

TEST(DistributedMpi, TrainingEqualsOneProcessWithTheGlobalBatch) {
  const Mlp mlp;
  const int steps = 4;
  TrainRun two = train(mlp, steps, 16, 0, dist::ReduceOrder::deterministic);
  TrainRun sliced = train(mlp, steps, 16, 2, dist::ReduceOrder::deterministic);
  TrainRun whole = train(mlp, steps, 16, 1, dist::ReduceOrder::deterministic);
  // Bit for bit: one process summing the same two shards in order.
  EXPECT_TRUE(bit_equal(two.params, sliced.params));
  // Against the whole global batch on one process: only the reduction order differs.
  const double diff = max_abs_diff(two.params, whole.params);
  if (rank() == 0)
    std::printf("[ measure  ] MLP, %d steps: max |2 procs - 1 proc| = %.3g\n", steps, diff);
  EXPECT_LT(diff, 1e-6);
  TrainRun fast = train(mlp, steps, 16, 0, dist::ReduceOrder::fast);
  EXPECT_LT(max_abs_diff(fast.params, whole.params), 1e-6);
  // Every process holds the same parameters.
  EXPECT_TRUE(bit_equal(dist::broadcast(two.params, 0), two.params));
}

TEST(DistributedMpi, BatchNormAxisNameAveragesStatisticsAcrossProcesses) {
  dist::bind_axis_name("batch");
  const int steps = 4;
  TrainRun two =
      train(Mlp{.axis_name = "batch", .batch_norm = true}, steps, 16, 0, dist::ReduceOrder::fast);
  // One process, the whole global batch, no axis: the same statistics and gradients.
  TrainRun whole = train(Mlp{.batch_norm = true}, steps, 16, 1, dist::ReduceOrder::fast);
  const double dp = max_abs_diff(two.params, whole.params);
  const double ds = max_abs_diff(two.batch_stats, whole.batch_stats);
  if (rank() == 0)
    std::printf(
        "[ measure  ] BatchNorm MLP, %d steps: max |2 procs - 1 proc| params %.3g, "
        "batch_stats %.3g\n",
        steps, dp, ds);
  EXPECT_LT(dp, 1e-5);
  EXPECT_LT(ds, 1e-5);
  // Without the axis name each process normalizes with its own half: visibly different.
  TrainRun local = train(Mlp{.batch_norm = true}, steps, 16, 0, dist::ReduceOrder::fast);
  EXPECT_GT(max_abs_diff(local.batch_stats, whole.batch_stats), 1e-3);
}

TEST(DistributedMpi, BucketingMeasured) {
  // The gradients of Flax's MNIST CNN (8 leaves, 824,458 float32): one bucketed call versus one
  // call per leaf. Printed for the record; both give the same values.
  Tree params = loom::models::CNN{}.init(rnd::key(0), jnp::ones({1, 28, 28, 1})).at("params");
  auto time_ms = [](auto&& f) {
    const int reps = 10;
    f();  // warm-up
    dist::barrier();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    return 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
           reps;
  };
  Tree bucketed, per_leaf;
  const double t_bucket = time_ms([&] { bucketed = dist::all_reduce_mean(params); });
  const double t_leaf = time_ms([&] {
    per_leaf = loom::tree_map([](const Array& a) { return dist::all_reduce_mean(a); }, params);
  });
  const double t_det =
      time_ms([&] { dist::all_reduce_mean(params, {.order = dist::ReduceOrder::deterministic}); });
  EXPECT_TRUE(bit_equal(bucketed, per_leaf));
  if (rank() == 0)
    std::printf(
        "[ measure  ] CNN gradients (3.3 MB): bucketed %.2f ms, per leaf %.2f ms, "
        "deterministic %.2f ms per all_reduce_mean\n",
        t_bucket, t_leaf, t_det);
}

// ---- faults: run as separate ctest entries, each ends the whole job ----

int run_fault(const std::string& fault) {
  dist::initialize({.timeout_seconds = 2});
  Tree t{{"x", f32({1, 2}, {2})}};
  dist::all_reduce_sum(t);  // both alive: works
  if ((fault == "dead" || fault == "dead0") && rank() == 1) {
    // A crash (exit status 3), or a clean-looking exit (0) that skipped MPI_Finalize.
    std::fprintf(stderr, "process 1: exiting without finalize (simulated crash)\n");
    std::_Exit(fault == "dead" ? 3 : 0);
  }
  if (fault == "stall" && rank() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(25));  // never reaches the collective
  }
  try {
    for (int i = 0; i < 1000; ++i) dist::all_reduce_sum(t);
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "process %d: %s\n", rank(), e.what());
    dist::abort(1);
  }
  dist::shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--fault=", 8) == 0) return run_fault(argv[i] + 8);
  }
  dist::Guard guard;
  ::testing::InitGoogleTest(&argc, argv);
  if (dist::process_index() != 0) {
    // Process 0 reports; the others print only failures (and fail the job by their status).
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    std::unique_ptr<::testing::TestEventListener> quiet(
        listeners.Release(listeners.default_result_printer()));
  }
  return RUN_ALL_TESTS();
}
