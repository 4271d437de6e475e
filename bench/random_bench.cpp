// Throughput of loom::random's samplers: 10^7 float32 (or uint32) numbers per call.
//   cmake -S . -B build -DLOOM_BUILD_BENCH=ON && cmake --build build --target random_bench
//   ./build/bench/random_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include "loom/random.hpp"

namespace {

namespace rnd = loom::random;
constexpr std::int64_t kN = 10'000'000;

template <typename F>
void run(benchmark::State& state, F&& f) {
  const rnd::ThreefryMode mode =
      state.range(0) == 0 ? rnd::ThreefryMode::partitionable : rnd::ThreefryMode::original;
  rnd::ModeGuard guard(mode);
  const rnd::Key key = rnd::key(0);
  for (auto _ : state) {
    loom::Array a = f(key);
    benchmark::DoNotOptimize(a.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetLabel(state.range(0) == 0 ? "partitionable" : "original");
}

void BM_Bits(benchmark::State& s) {
  run(s, [](const rnd::Key& k) { return rnd::bits(k, {kN}); });
}
void BM_Uniform(benchmark::State& s) {
  run(s, [](const rnd::Key& k) { return rnd::uniform(k, {kN}); });
}
void BM_Normal(benchmark::State& s) {
  run(s, [](const rnd::Key& k) { return rnd::normal(k, {kN}); });
}
void BM_TruncatedNormal(benchmark::State& s) {
  run(s, [](const rnd::Key& k) { return rnd::truncated_normal(k, -2, 2, {kN}); });
}

BENCHMARK(BM_Bits)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Uniform)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Normal)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TruncatedNormal)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
