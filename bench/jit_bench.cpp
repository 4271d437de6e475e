// A jitted vs eager training step (loss, grad, optax.sgd momentum update) of the MLP
// 784-512-512-10 and of Flax's MNIST CNN, batch 128; jitted with the fusion pass (fused
// elementwise chains, in-place reuse) and without it (JitOptions::fuse = false, node by node).
// Counters of the jitted runs: "peak_live_MB", the graph's peak of intermediates alive at once
// during a replay, and "fused_nodes" / "in_place", what the fusion pass planned.
#include <benchmark/benchmark.h>

#include "../examples/models/cnn.hpp"
#include "loom/loom.hpp"

namespace {

namespace jnp = loom::numpy;
namespace nn = loom::nn;
namespace optim = loom::optim;
using loom::Array;
using loom::Tree;

struct Mlp : nn::Module<Mlp> {
  Array call(const Array& x) const {
    Array h = nn::relu(nn::Dense{.features = 512}(x));
    h = nn::relu(nn::Dense{.features = 512}(h));
    return nn::Dense{.features = 10}(h);
  }
};

enum class Mode { eager, jit_unfused, jit };

template <typename Model>
void run(benchmark::State& state, const Model& model, const Array& images, Mode mode) {
  const bool jitted = mode != Mode::eager;
  Tree params = model.init(loom::random::key(0), images).at("params");
  auto tx = optim::sgd(0.1, 0.9);
  Tree opt_state = tx.init(params);
  Array labels = loom::random::randint(loom::random::key(1), {images.shape()[0]}, 0, 10);
  auto step = [model, tx](const Tree& p, const Tree& s, const Array& x, const Array& y) {
    auto loss_fn = [&](const Tree& q) {
      Array logits = model.apply(Tree{{"params", q}}, x);
      return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, y));
    };
    auto [loss, grads] = loom::value_and_grad(loss_fn)(p);
    auto [updates, new_state] = tx.update(grads, s, p);
    return std::make_tuple(optim::apply_updates(p, updates), new_state, loss);
  };
  auto jstep = loom::jit(step, {.fuse = mode == Mode::jit});
  if (jitted) {
    const auto info = jstep.graph_info(params, opt_state, images, labels);
    state.counters["peak_live_MB"] = double(info.peak_live_bytes) / 1e6;
    state.counters["fused_nodes"] = double(info.num_fused_nodes);
    state.counters["in_place"] = double(info.num_in_place);
  }
  for (auto _ : state) {
    auto [p, s, l] = jitted ? jstep(params, opt_state, images, labels)
                            : step(params, opt_state, images, labels);
    params = std::move(p);
    opt_state = std::move(s);
    benchmark::DoNotOptimize(l);
  }
}

Array mlp_images() {
  return loom::random::normal(loom::random::key(2), {128, 784});
}
Array cnn_images() {
  return loom::random::normal(loom::random::key(2), {128, 28, 28, 1});
}
void BM_MlpStepEager(benchmark::State& s) {
  run(s, Mlp{}, mlp_images(), Mode::eager);
}
void BM_MlpStepJitUnfused(benchmark::State& s) {
  run(s, Mlp{}, mlp_images(), Mode::jit_unfused);
}
void BM_MlpStepJit(benchmark::State& s) {
  run(s, Mlp{}, mlp_images(), Mode::jit);
}
void BM_CnnStepEager(benchmark::State& s) {
  run(s, loom::models::CNN{}, cnn_images(), Mode::eager);
}
void BM_CnnStepJitUnfused(benchmark::State& s) {
  run(s, loom::models::CNN{}, cnn_images(), Mode::jit_unfused);
}
void BM_CnnStepJit(benchmark::State& s) {
  run(s, loom::models::CNN{}, cnn_images(), Mode::jit);
}
// Elementwise chains alone on (1024, 1024): what the fusion pass saves when nothing else
// dominates (one pass over memory instead of one per op). "Chain": bias, gelu, sigmoid, tanh
// and a relu-style mask (transcendental, compute-bound); "CheapChain": adds, multiplies and
// maximum (memory-bound).
Array chain_fn(const Array& x, const Array& b) {
  Array h = nn::gelu(x + b);
  return jnp::where(x > 0.0, h * nn::sigmoid(x), 0.0) - jnp::tanh(h);
}
Array cheap_chain_fn(const Array& x, const Array& b) {
  Array h = jnp::maximum(x * 2.0 + b, 0.0);
  return (h * x - b) * 0.5 + x;
}

template <Array (*F)(const Array&, const Array&)>
void chain(benchmark::State& state, Mode mode) {
  auto f = [](const Array& x, const Array& b) { return F(x, b); };
  auto jf = loom::jit(f, {.fuse = mode == Mode::jit});
  Array x = loom::random::normal(loom::random::key(3), {1024, 1024});
  Array b = loom::random::normal(loom::random::key(4), {1024});
  if (mode != Mode::eager) {
    const auto info = jf.graph_info(x, b);
    state.counters["peak_live_MB"] = double(info.peak_live_bytes) / 1e6;
    state.counters["fused_nodes"] = double(info.num_fused_nodes);
  }
  for (auto _ : state) benchmark::DoNotOptimize(mode == Mode::eager ? f(x, b) : jf(x, b));
}
void BM_ChainEager(benchmark::State& s) {
  chain<chain_fn>(s, Mode::eager);
}
void BM_ChainJitUnfused(benchmark::State& s) {
  chain<chain_fn>(s, Mode::jit_unfused);
}
void BM_ChainJit(benchmark::State& s) {
  chain<chain_fn>(s, Mode::jit);
}
void BM_CheapChainEager(benchmark::State& s) {
  chain<cheap_chain_fn>(s, Mode::eager);
}
void BM_CheapChainJitUnfused(benchmark::State& s) {
  chain<cheap_chain_fn>(s, Mode::jit_unfused);
}
void BM_CheapChainJit(benchmark::State& s) {
  chain<cheap_chain_fn>(s, Mode::jit);
}
BENCHMARK(BM_ChainEager)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ChainJitUnfused)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ChainJit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheapChainEager)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheapChainJitUnfused)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CheapChainJit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpStepEager)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpStepJitUnfused)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpStepJit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CnnStepEager)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CnnStepJitUnfused)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CnnStepJit)->Unit(benchmark::kMillisecond);

}  // namespace
