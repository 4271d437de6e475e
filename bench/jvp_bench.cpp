// Forward mode: jvp of the 784-512-512-10 MLP loss (batch 128) with respect to all parameters,
// by the forward trace (loom::jvp) and by the old transposition of the recorded pullback
// (loom::linearize, then one f_jvp call: what jvp cost before the trace), against the loss alone
// and its gradient; and jacfwd of a small map (16 jvps) by both. Run with OMP_NUM_THREADS=1:
//   OMP_NUM_THREADS=1 ./build/bench/jvp_bench --benchmark_repetitions=5 \
//     --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "loom/loom.hpp"

namespace {

using loom::Array;
using loom::Tree;
namespace jnp = loom::numpy;
namespace nn = loom::nn;

// Deterministic float32 values sin(0.37 i + phase) * scale.
Array filled(loom::Shape shape, double phase, double scale) {
  std::vector<float> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(std::sin(0.37 * double(i) + phase) * scale);
  return Array(v, shape);
}

struct Mlp {
  Array x = filled({128, 784}, 0.1, 1.0);
  Array labels_hot;
  Tree params, tangents;
  Mlp() {
    std::vector<int> labels(128);
    for (int i = 0; i < 128; ++i) labels[std::size_t(i)] = (i * 7) % 10;
    labels_hot = jnp::one_hot(Array(labels, loom::Shape{128}), 10, loom::DType::float32);
    const int sizes[] = {784, 512, 512, 10};
    params = Tree(Tree::Dict{});
    tangents = Tree(Tree::Dict{});
    for (int l = 0; l < 3; ++l) {
      const std::string k = std::to_string(l);
      const double scale = 1.0 / std::sqrt(double(sizes[l]));
      params.set("w" + k, filled({sizes[l], sizes[l + 1]}, 0.3 * l, scale));
      params.set("b" + k, filled({sizes[l + 1]}, 0.5 * l, 0.1));
      tangents.set("w" + k, filled({sizes[l], sizes[l + 1]}, 1.0 + l, scale));
      tangents.set("b" + k, filled({sizes[l + 1]}, 2.0 + l, 0.1));
    }
  }
  // Mean softmax cross-entropy of relu(relu(x W0 + b0) W1 + b1) W2 + b2.
  Array loss(const Tree& p) const {
    Array h = x;
    for (int l = 0; l < 3; ++l) {
      const std::string k = std::to_string(l);
      h = jnp::matmul(h, p.at("w" + k).leaf()) + p.at("b" + k).leaf();
      if (l < 2) h = nn::relu(h);
    }
    return -jnp::mean(jnp::sum(labels_hot * nn::log_softmax(h, -1), -1));
  }
};

const Mlp& mlp() {
  static const Mlp m;
  return m;
}

void BM_MlpLoss(benchmark::State& state) {
  const Mlp& m = mlp();
  for (auto _ : state) benchmark::DoNotOptimize(m.loss(m.params));
}
BENCHMARK(BM_MlpLoss)->Unit(benchmark::kMillisecond);

void BM_MlpJvpTrace(benchmark::State& state) {
  const Mlp& m = mlp();
  auto f = [&m](const Tree& p) { return m.loss(p); };
  for (auto _ : state) benchmark::DoNotOptimize(loom::jvp(f, m.params, m.tangents));
}
BENCHMARK(BM_MlpJvpTrace)->Unit(benchmark::kMillisecond);

void BM_MlpJvpTransposition(benchmark::State& state) {
  const Mlp& m = mlp();
  auto f = [&m](const Tree& p) { return m.loss(p); };
  for (auto _ : state) {
    auto [y, f_jvp] = loom::linearize(f, m.params);
    benchmark::DoNotOptimize(f_jvp(m.tangents));
  }
}
BENCHMARK(BM_MlpJvpTransposition)->Unit(benchmark::kMillisecond);

void BM_MlpValueAndGrad(benchmark::State& state) {
  const Mlp& m = mlp();
  auto g = loom::value_and_grad([&m](const Tree& p) { return m.loss(p); });
  for (auto _ : state) benchmark::DoNotOptimize(g(m.params));
}
BENCHMARK(BM_MlpValueAndGrad)->Unit(benchmark::kMillisecond);

// A small map R^16 -> R^8: jacfwd runs 16 jvps.
Array small(const Array& x) {
  static const Array w = filled({8, 16}, 0.7, 0.25);
  return jnp::tanh(jnp::matmul(w, x)) * jnp::sum(jnp::exp(x * 0.1f));
}

void BM_JacfwdSmallTrace(benchmark::State& state) {
  const Array x = filled({16}, 0.2, 1.0);
  auto jac = loom::jacfwd(small);
  for (auto _ : state) benchmark::DoNotOptimize(jac(x));
}
BENCHMARK(BM_JacfwdSmallTrace)->Unit(benchmark::kMicrosecond);

// jacfwd as it was: linearize once, one transposed pullback per basis vector.
void BM_JacfwdSmallTransposition(benchmark::State& state) {
  const Array x = filled({16}, 0.2, 1.0);
  for (auto _ : state) {
    auto [y, f_jvp] = loom::linearize(small, x);
    std::vector<Array> cols;
    for (int j = 0; j < 16; ++j) {
      cols.push_back(f_jvp(jnp::one_hot(Array::scalar(j), 16, loom::DType::float32)));
    }
    benchmark::DoNotOptimize(jnp::stack(cols, 1));
  }
}
BENCHMARK(BM_JacfwdSmallTransposition)->Unit(benchmark::kMicrosecond);

}  // namespace
