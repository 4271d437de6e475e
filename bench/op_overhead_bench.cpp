// Per-op overhead of the autodiff machinery: an eager add of two 4-element arrays (nothing may
// be added when no transformation is active) and grad of a 20-op chain of tiny arrays (the cost
// of recording nodes and running the backward pass, not of the kernels).
#include <benchmark/benchmark.h>

#include "loom/loom.hpp"

namespace {

using loom::Array;
namespace jnp = loom::numpy;

void BM_EagerAdd4(benchmark::State& state) {
  Array a = Array(std::vector<float>{1.f, 2.f, 3.f, 4.f}, loom::Shape{4});
  Array b = Array(std::vector<float>{0.5f, 0.25f, 0.125f, 1.f}, loom::Shape{4});
  for (auto _ : state) {
    Array c = a + b;
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_EagerAdd4);

// 20 elementwise ops (exp, multiply, add, ...) on a 4-element array, then a sum.
Array chain20(const Array& x) {
  Array y = x;
  for (int i = 0; i < 5; ++i) {
    y = jnp::exp(y * 0.1f);  // 2 ops
    y = y + x;               // 1 op
    y = y * 0.5f;            // 1 op
  }
  return jnp::sum(y);
}

void BM_GradChain20(benchmark::State& state) {
  Array x = Array(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, loom::Shape{4});
  auto g = loom::grad(chain20);
  for (auto _ : state) {
    Array d = g(x);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_GradChain20);

void BM_EagerChain20(benchmark::State& state) {
  Array x = Array(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, loom::Shape{4});
  for (auto _ : state) {
    Array d = chain20(x);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_EagerChain20);

}  // namespace
