// Benchmarks: loom matmul vs a direct cblas_sgemm on the same sizes; per-op overhead of a tiny
// jnp::add; conv_general_dilated forward/backward on a ResNet-style layer.
//
//   cmake -S . -B build-bench -DLOOM_BUILD_BENCH=ON && cmake --build build-bench --target
//   numpy_bench build-bench/bench/numpy_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
//
// "FLOP/s" counters are floating-point operations (2 per multiply-add) per second.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <vector>

#include "loom/loom.hpp"

namespace jnp = loom::numpy;
namespace lax = loom::lax;
using loom::Array;
using loom::DType;
using loom::Shape;

namespace {

Array wave(Shape shape, double phase) {
  std::vector<float> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(std::sin(0.37 * double(i) + phase));
  return Array(v, shape);
}

void set_flops(benchmark::State& state, double flops_per_iter) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iter, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
}

// (a) matmul: square n x n, and the MLP shape (128, 784) x (784, 128) as args {m, k, n}.
void MatmulArgs(benchmark::internal::Benchmark* b) {
  for (int n : {64, 128, 256, 512, 1024}) b->Args({n, n, n});
  b->Args({128, 784, 128});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

void BM_LoomMatmul(benchmark::State& state) {
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  Array a = wave({m, k}, 0.1), b = wave({k, n}, 0.7);
  for (auto _ : state) {
    Array c = jnp::matmul(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_flops(state, 2.0 * double(m) * double(n) * double(k));
}
BENCHMARK(BM_LoomMatmul)->Apply(MatmulArgs);

void BM_RawSgemm(benchmark::State& state) {
  const auto m = state.range(0), k = state.range(1), n = state.range(2);
  std::vector<float> a = wave({m, k}, 0.1).to_vector<float>(),
                     b = wave({k, n}, 0.7).to_vector<float>();
  std::vector<float> c(static_cast<std::size_t>(m * n));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(k), 1.f, a.data(),
                int(k), b.data(), int(n), 0.f, c.data(), int(n));
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 2.0 * double(m) * double(n) * double(k));
}
BENCHMARK(BM_RawSgemm)->Apply(MatmulArgs);

// Transposed operand: matmul(a^T-layout) through einsum, no copy expected.
void BM_LoomEinsumTransposedA(benchmark::State& state) {
  const auto n = state.range(0);
  Array a = wave({n, n}, 0.1), b = wave({n, n}, 0.7);
  for (auto _ : state) {
    Array c = jnp::einsum("ki,kj->ij", {a, b});
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_flops(state, 2.0 * double(n) * double(n) * double(n));
}
BENCHMARK(BM_LoomEinsumTransposedA)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Attention-shaped einsums (b=8, q=k=128, h=8, d=64).
void BM_EinsumAttentionScores(benchmark::State& state) {
  Array q = wave({8, 128, 8, 64}, 0.1), k = wave({8, 128, 8, 64}, 0.5);
  for (auto _ : state) {
    Array s = jnp::einsum("bqhd,bkhd->bhqk", {q, k});
    benchmark::DoNotOptimize(s.raw_data());
  }
  set_flops(state, 2.0 * 8 * 8 * 128 * 128 * 64);
}
BENCHMARK(BM_EinsumAttentionScores)->Unit(benchmark::kMicrosecond)->UseRealTime();

// (b) per-op overhead: the smallest elementwise op.
void BM_TinyAdd(benchmark::State& state) {
  Array a = wave({1, 8}, 0.1), b = wave({1, 8}, 0.2);
  for (auto _ : state) {
    Array c = jnp::add(a, b);
    benchmark::DoNotOptimize(c.raw_data());
  }
}
BENCHMARK(BM_TinyAdd)->Unit(benchmark::kNanosecond);

// (c) conv: N=32, 32x32, 64 -> 64 channels, 3x3, SAME, float32.
constexpr double kConvFlops = 2.0 * 32 * 32 * 32 * 64 * 64 * 9;

void BM_ConvForward(benchmark::State& state) {
  Array x = wave({32, 32, 32, 64}, 0.1), w = wave({3, 3, 64, 64}, 0.3);
  for (auto _ : state) {
    Array y = lax::conv_general_dilated(x, w, {1, 1}, lax::Padding::same());
    benchmark::DoNotOptimize(y.raw_data());
  }
  set_flops(state, kConvFlops);
}
BENCHMARK(BM_ConvForward)->Unit(benchmark::kMillisecond)->UseRealTime();

// Backward: the pullback producing both d(input) and d(kernel) (2x the forward FLOPs).
void BM_ConvBackward(benchmark::State& state) {
  Array x = wave({32, 32, 32, 64}, 0.1), w = wave({3, 3, 64, 64}, 0.3);
  loom::Tree params = {{"w", w}, {"x", x}};
  auto [y, pullback] = loom::vjp(
      [](const loom::Tree& p) {
        return lax::conv_general_dilated(p.dict().at("x").leaf(), p.dict().at("w").leaf(), {1, 1},
                                         lax::Padding::same());
      },
      params);
  Array gy = wave(y.shape(), 0.9);
  for (auto _ : state) {
    loom::Tree g = pullback(gy);
    benchmark::DoNotOptimize(g.dict().at("w").leaf().raw_data());
  }
  set_flops(state, 2 * kConvFlops);
}
BENCHMARK(BM_ConvBackward)->Unit(benchmark::kMillisecond)->UseRealTime();

// The GEMM inside the conv forward, as one raw sgemm: (32*32*32, 576) x (576, 64).
void BM_RawSgemmConvShape(benchmark::State& state) {
  const int m = 32 * 32 * 32, k = 576, n = 64;
  std::vector<float> a = wave({m, k}, 0.1).to_vector<float>(),
                     b = wave({k, n}, 0.7).to_vector<float>();
  std::vector<float> c(static_cast<std::size_t>(m) * n);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, a.data(), k, b.data(), n,
                0.f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 2.0 * m * n * k);
}
BENCHMARK(BM_RawSgemmConvShape)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
