// Reductions and shape manipulation: throughput of the kernels in src/numpy/reductions.cpp and
// src/numpy/manipulation.cpp, with naive loops as a reference point.
//
//   cmake -S . -B build-bench -DLOOM_BUILD_BENCH=ON && cmake --build build-bench --target
//   reductions_bench build-bench/bench/reductions_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <vector>

#include "loom/loom.hpp"

namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;

namespace {

Array input(std::int64_t n, std::int64_t k) {
  return jnp::reshape(jnp::sin(jnp::arange(0, static_cast<double>(n * k), 1, DType::float32)),
                      {n, k});
}

void set_bytes(benchmark::State& state, std::int64_t elements) {
  state.SetBytesProcessed(state.iterations() * elements * static_cast<std::int64_t>(sizeof(float)));
}

// ---- sums over each axis of an (N, K) float32 array
// ----------------------------------------------

void BM_SumLastAxis(benchmark::State& state) {
  const std::int64_t n = state.range(0), k = state.range(1);
  Array x = input(n, k);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::sum(x, 1));
  set_bytes(state, n * k);
}
BENCHMARK(BM_SumLastAxis)->Args({4096, 1024})->Args({262144, 16})->Args({1, 1 << 22});

void BM_SumFirstAxis(benchmark::State& state) {
  const std::int64_t n = state.range(0), k = state.range(1);
  Array x = input(n, k);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::sum(x, 0));
  set_bytes(state, n * k);
}
BENCHMARK(BM_SumFirstAxis)->Args({4096, 1024})->Args({262144, 16})->Args({16, 262144});

// Naive references: the textbook loops (sequential accumulation, index arithmetic per element).
void BM_NaiveSumLastAxis(benchmark::State& state) {
  const std::int64_t n = state.range(0), k = state.range(1);
  std::vector<float> x = input(n, k).to_vector<float>();
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) {
    for (std::int64_t i = 0; i < n; ++i) {
      float s = 0;
      for (std::int64_t j = 0; j < k; ++j) s += x[std::size_t(i * k + j)];
      out[std::size_t(i)] = s;
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, n * k);
}
BENCHMARK(BM_NaiveSumLastAxis)->Args({4096, 1024});

void BM_NaiveSumFirstAxis(benchmark::State& state) {
  const std::int64_t n = state.range(0), k = state.range(1);
  std::vector<float> x = input(n, k).to_vector<float>();
  std::vector<float> out(static_cast<std::size_t>(k));
  for (auto _ : state) {
    for (std::int64_t j = 0; j < k; ++j) {
      float s = 0;
      for (std::int64_t i = 0; i < n; ++i) s += x[std::size_t(i * k + j)];
      out[std::size_t(j)] = s;
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, n * k);
}
BENCHMARK(BM_NaiveSumFirstAxis)->Args({4096, 1024});

// ---- other reductions ---------------------------------------------------------------------------

void BM_MaxLastAxis(benchmark::State& state) {
  Array x = input(4096, 1024);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::max(x, 1));
  set_bytes(state, 4096 * 1024);
}
BENCHMARK(BM_MaxLastAxis);

void BM_MeanMiddleAxes(benchmark::State& state) {
  Array x = jnp::reshape(input(4096, 1024), {64, 64, 1024});
  for (auto _ : state) benchmark::DoNotOptimize(jnp::mean(x, {0, 2}));  // transposing path
  set_bytes(state, 4096 * 1024);
}
BENCHMARK(BM_MeanMiddleAxes);

void BM_VarLastAxis(benchmark::State& state) {
  Array x = input(4096, 1024);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::var(x, 1));
  set_bytes(state, 4096 * 1024);
}
BENCHMARK(BM_VarLastAxis);

void BM_LogsumexpLastAxis(benchmark::State& state) {
  Array x = input(4096, 1000);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::logsumexp(x, 1));
  set_bytes(state, 4096 * 1000);
}
BENCHMARK(BM_LogsumexpLastAxis);

void BM_ArgmaxLastAxis(benchmark::State& state) {
  Array x = input(4096, 1000);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::argmax(x, 1));
  set_bytes(state, 4096 * 1000);
}
BENCHMARK(BM_ArgmaxLastAxis);

void BM_SumGrad(benchmark::State& state) {
  Array x = input(1024, 1024);
  auto f = [](const Array& a) { return jnp::sum(jnp::max(a, 1)); };
  for (auto _ : state) benchmark::DoNotOptimize(loom::grad(f)(x));
  set_bytes(state, 1024 * 1024);
}
BENCHMARK(BM_SumGrad);

// ---- manipulation
// ---------------------------------------------------------------------------------

void BM_Transpose2D(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Array x = input(n, n);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::transpose(x));
  set_bytes(state, n * n);
}
BENCHMARK(BM_Transpose2D)->Arg(512)->Arg(2048);

void BM_NaiveTranspose2D(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  std::vector<float> x = input(n, n).to_vector<float>();
  std::vector<float> out(x.size());
  for (auto _ : state) {
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t j = 0; j < n; ++j) out[std::size_t(j * n + i)] = x[std::size_t(i * n + j)];
    }
    benchmark::DoNotOptimize(out.data());
  }
  set_bytes(state, n * n);
}
BENCHMARK(BM_NaiveTranspose2D)->Arg(2048);

void BM_TransposeBatched(benchmark::State& state) {
  // (B, H, T, D) -> (B, T, H, D), the attention head shuffle.
  Array x = jnp::reshape(input(4096, 1024), {8, 16, 256, 128});
  for (auto _ : state) benchmark::DoNotOptimize(jnp::transpose(x, std::vector<int>{0, 2, 1, 3}));
  set_bytes(state, 4096 * 1024);
}
BENCHMARK(BM_TransposeBatched);

void BM_BroadcastTo(benchmark::State& state) {
  Array x = input(1, 1024);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::broadcast_to(x, loom::Shape{4096, 1024}));
  set_bytes(state, 4096 * 1024);
}
BENCHMARK(BM_BroadcastTo);

void BM_SliceStep2(benchmark::State& state) {
  Array x = input(4096, 1024);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::slice(x, {{}, {0, jnp::kEnd, 2}}));
  set_bytes(state, 4096 * 512);
}
BENCHMARK(BM_SliceStep2);

void BM_Concatenate(benchmark::State& state) {
  Array a = input(2048, 1024), b = input(2048, 1024);
  for (auto _ : state) benchmark::DoNotOptimize(jnp::concatenate({a, b}, 1));
  set_bytes(state, 4096 * 1024);
}
BENCHMARK(BM_Concatenate);

}  // namespace
