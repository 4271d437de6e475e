// Elementwise throughput: loom's float32 exp/log/tanh kernels against libm's scalar calls on
// the same in-cache data, and the jnp-level ops (allocation and threading included).
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "loom/loom.hpp"
#include "numpy/vmath.hpp"

namespace {

namespace jnp = loom::numpy;
constexpr int kN = 4096;  // fits in L1/L2: measures the arithmetic, not memory

std::vector<float> inputs(bool positive) {
  std::vector<float> v(kN);
  for (int i = 0; i < kN; ++i) {
    const float s = 5.0f * std::sin(0.37f * static_cast<float>(i));
    v[static_cast<std::size_t>(i)] = positive ? std::abs(s) + 1e-3f : s;
  }
  return v;
}

using Kernel = void (*)(const float*, float*, std::int64_t);

void run_vmath(benchmark::State& state, Kernel kernel, bool positive) {
  const auto in = inputs(positive);
  std::vector<float> out(kN);
  for (auto _ : state) {
    kernel(in.data(), out.data(), kN);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

void run_libm(benchmark::State& state, float (*fn)(float), bool positive) {
  const auto in = inputs(positive);
  std::vector<float> out(kN);
  for (auto _ : state) {
    for (int i = 0; i < kN; ++i) out[std::size_t(i)] = fn(in[std::size_t(i)]);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

float libm_exp(float x) {
  return std::exp(x);
}
float libm_log(float x) {
  return std::log(x);
}
float libm_tanh(float x) {
  return std::tanh(x);
}

namespace vm = loom::numpy::vmath;
void BM_ExpLoom(benchmark::State& s) {
  run_vmath(s, vm::exp_f32, false);
}
void BM_ExpLibm(benchmark::State& s) {
  run_libm(s, libm_exp, false);
}
void BM_LogLoom(benchmark::State& s) {
  run_vmath(s, vm::log_f32, true);
}
void BM_LogLibm(benchmark::State& s) {
  run_libm(s, libm_log, true);
}
void BM_TanhLoom(benchmark::State& s) {
  run_vmath(s, vm::tanh_f32, false);
}
void BM_TanhLibm(benchmark::State& s) {
  run_libm(s, libm_tanh, false);
}

void BM_JnpTanh(benchmark::State& state) {
  const loom::Array x = loom::random::normal(loom::random::key(0), {state.range(0)});
  for (auto _ : state) benchmark::DoNotOptimize(jnp::tanh(x));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_JnpMulAdd(benchmark::State& state) {
  const loom::Array x = loom::random::normal(loom::random::key(0), {state.range(0)});
  const loom::Array b = loom::random::normal(loom::random::key(1), {state.range(0)});
  for (auto _ : state) benchmark::DoNotOptimize(x * 2.0 + b);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_ExpLoom);
BENCHMARK(BM_ExpLibm);
BENCHMARK(BM_LogLoom);
BENCHMARK(BM_LogLibm);
BENCHMARK(BM_TanhLoom);
BENCHMARK(BM_TanhLibm);
BENCHMARK(BM_JnpTanh)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_JnpMulAdd)->Arg(1 << 10)->Arg(1 << 20);
