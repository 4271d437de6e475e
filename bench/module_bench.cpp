// The module machinery's cost: apply of a 784-128-10 MLP on one example against the same
// arithmetic written with raw ops, and the per-module overhead of a call through apply.
#include <benchmark/benchmark.h>

#include "loom/loom.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
using loom::Array;
using loom::Tree;

namespace {

struct MLP : nn::Module<MLP> {
  Array call(const Array& x) const {
    return nn::Dense{.features = 10}(jnp::tanh(nn::Dense{.features = 128}(x)));
  }
};

// A module that does nothing: what remains is the machinery (naming, scope, frame).
struct Identity : nn::Module<Identity> {
  Array call(const Array& x) const { return x; }
};
struct Chain : nn::Module<Chain> {
  int n = 100;
  Array call(Array x) const {
    for (int i = 0; i < n; ++i) x = Identity{}(x);
    return x;
  }
};
// A module that reads one param: naming + scope + one param lookup.
struct Bias : nn::Module<Bias> {
  Array call(const Array& x) const {
    return param("b", nn::initializers::zeros_init(), {x.shape().back()});
  }
};
struct BiasChain : nn::Module<BiasChain> {
  int n = 100;
  Array call(Array x) const {
    Array last = x;
    for (int i = 0; i < n; ++i) last = Bias{}(x);
    return last;
  }
};

void BM_MlpApply(benchmark::State& state) {
  MLP model;
  Array x = jnp::ones({1, 784});
  Tree v = model.init(loom::random::key(0), x);
  for (auto _ : state) benchmark::DoNotOptimize(model.apply(v, x));
}
BENCHMARK(BM_MlpApply);

void BM_MlpRawOps(benchmark::State& state) {
  MLP model;
  Array x = jnp::ones({1, 784});
  Tree v = model.init(loom::random::key(0), x);
  const Tree& p = v.at("params");
  Array w1 = p.at("Dense_0").at("kernel").leaf(), b1 = p.at("Dense_0").at("bias").leaf();
  Array w2 = p.at("Dense_1").at("kernel").leaf(), b2 = p.at("Dense_1").at("bias").leaf();
  for (auto _ : state) {
    benchmark::DoNotOptimize(jnp::matmul(jnp::tanh(jnp::matmul(x, w1) + b1), w2) + b2);
  }
}
BENCHMARK(BM_MlpRawOps);

void BM_MlpMatmulsOnly(benchmark::State& state) {
  Array x = jnp::ones({1, 784});
  Array w1 = jnp::ones({784, 128}), w2 = jnp::ones({128, 10});
  for (auto _ : state) benchmark::DoNotOptimize(jnp::matmul(jnp::matmul(x, w1), w2));
}
BENCHMARK(BM_MlpMatmulsOnly);

// Per-module overhead: time / n for n empty submodules in one apply.
void BM_EmptySubmodules(benchmark::State& state) {
  Chain model{.n = static_cast<int>(state.range(0))};
  Array x = jnp::ones({1, 4});
  Tree v = model.init(loom::random::key(0), x);
  for (auto _ : state) benchmark::DoNotOptimize(model.apply(v, x));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EmptySubmodules)->Arg(1)->Arg(100);

// Per-module overhead with one param read each (the common case: a layer's kernel).
void BM_OneParamSubmodules(benchmark::State& state) {
  BiasChain model{.n = static_cast<int>(state.range(0))};
  Array x = jnp::ones({1, 4});
  Tree v = model.init(loom::random::key(0), x);
  for (auto _ : state) benchmark::DoNotOptimize(model.apply(v, x));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_OneParamSubmodules)->Arg(100);

// Constructing a Dense value (its default initializers are std::functions).
void BM_DenseValue(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(nn::Dense{.features = 10});
}
BENCHMARK(BM_DenseValue);

}  // namespace
