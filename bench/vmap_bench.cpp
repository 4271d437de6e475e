// Per-example gradients (issue 9): grad of one example's loss of the MLP 784-512-512-10,
// mapped over a batch of 32, float32.
//   VmapRules: loom::vmap(loom::grad(loss)) with the batching rules (each matmul of the
//              forward and backward passes runs once on the batch);
//   VmapLoop:  the same with the rules switched off (detail::vmap_rules_enabled() = false):
//              every non-elementwise primitive runs once per example, as vmap did before;
//   GradLoop:  a Python-style loop calling grad(loss) on each example and stacking;
//   JitVmapRules: jit(vmap(grad(loss))), the batched graph traced once and replayed.
// Run: ./build/bench/vmap_bench --benchmark_min_time=2s
#include <benchmark/benchmark.h>

#include "loom/loom.hpp"

namespace {

namespace jnp = loom::numpy;
using loom::Array;
using loom::Tree;

constexpr std::int64_t kBatch = 32;

Array init(loom::Shape shape, double scale, std::uint32_t seed) {
  return loom::random::normal(loom::random::PRNGKey(seed), shape, loom::DType::float32) * scale;
}

struct Mlp {
  Tree params = {{"w1", init({784, 512}, 0.036, 1)}, {"b1", init({512}, 0.01, 2)},
                 {"w2", init({512, 512}, 0.044, 3)}, {"b2", init({512}, 0.01, 4)},
                 {"w3", init({512, 10}, 0.044, 5)},  {"b3", init({10}, 0.01, 6)}};
  Array xs = loom::random::uniform(loom::random::PRNGKey(7), {kBatch, 784}, loom::DType::float32);
  Array ys = [] {
    std::vector<std::int32_t> v;
    for (std::int64_t b = 0; b < kBatch; ++b) v.push_back(std::int32_t(b % 10));
    return Array(v, loom::Shape{kBatch});
  }();
};

// One example: x (784,), y () int32.
Array loss(const Tree& p, const Array& x, const Array& y) {
  Array h = loom::nn::relu(jnp::dot(x, p.at("w1").leaf()) + p.at("b1").leaf());
  h = loom::nn::relu(jnp::dot(h, p.at("w2").leaf()) + p.at("b2").leaf());
  const Array z = jnp::dot(h, p.at("w3").leaf()) + p.at("b3").leaf();
  return loom::optim::softmax_cross_entropy_with_integer_labels(z, y);
}

const loom::VmapOptions kAxes{.in_axes = {std::nullopt, 0, 0}};

void BM_PerExampleGrad_VmapRules(benchmark::State& state) {
  Mlp m;
  auto per = loom::vmap(loom::grad(loss), kAxes);
  for (auto _ : state) {
    Tree g = per(m.params, m.xs, m.ys);
    benchmark::DoNotOptimize(g);
  }
}
BENCHMARK(BM_PerExampleGrad_VmapRules)->Unit(benchmark::kMillisecond);

void BM_PerExampleGrad_VmapLoop(benchmark::State& state) {
  Mlp m;
  auto per = loom::vmap(loom::grad(loss), kAxes);
  loom::detail::vmap_rules_enabled() = false;
  for (auto _ : state) {
    Tree g = per(m.params, m.xs, m.ys);
    benchmark::DoNotOptimize(g);
  }
  loom::detail::vmap_rules_enabled() = true;
}
BENCHMARK(BM_PerExampleGrad_VmapLoop)->Unit(benchmark::kMillisecond);

void BM_PerExampleGrad_GradLoop(benchmark::State& state) {
  Mlp m;
  auto g1 = loom::grad(loss);
  for (auto _ : state) {
    std::vector<std::vector<Array>> leaves(6);
    for (std::int64_t b = 0; b < kBatch; ++b) {
      Tree g = g1(m.params, jnp::index(m.xs, b, 0), jnp::index(m.ys, b, 0));
      int k = 0;
      for (const char* name : {"w1", "b1", "w2", "b2", "w3", "b3"})
        leaves[std::size_t(k++)].push_back(g.at(name).leaf());
    }
    Tree out;
    int k = 0;
    for (const char* name : {"w1", "b1", "w2", "b2", "w3", "b3"})
      out.set(name, jnp::stack(leaves[std::size_t(k++)], 0));
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_PerExampleGrad_GradLoop)->Unit(benchmark::kMillisecond);

void BM_PerExampleGrad_JitVmapRules(benchmark::State& state) {
  Mlp m;
  auto per = loom::jit(loom::vmap(loom::grad(loss), kAxes));
  for (auto _ : state) {
    Tree g = per(m.params, m.xs, m.ys);
    benchmark::DoNotOptimize(g);
  }
}
BENCHMARK(BM_PerExampleGrad_JitVmapRules)->Unit(benchmark::kMillisecond);

}  // namespace
