// A jitted vs eager training step (loss, grad, optax.sgd momentum update) of the MLP
// 784-512-512-10 and of Flax's MNIST CNN, batch 128. The "peak_live_MB" counter of the jitted
// runs is the graph's peak of intermediates alive at once during a replay.
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

template <typename Model>
void run(benchmark::State& state, const Model& model, const Array& images, bool jitted) {
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
  auto jstep = loom::jit(step);
  if (jitted) {
    state.counters["peak_live_MB"] =
        double(jstep.graph_info(params, opt_state, images, labels).peak_live_bytes) / 1e6;
  }
  for (auto _ : state) {
    auto [p, s, l] = jitted ? jstep(params, opt_state, images, labels)
                            : step(params, opt_state, images, labels);
    params = std::move(p);
    opt_state = std::move(s);
    benchmark::DoNotOptimize(l);
  }
}

void BM_MlpStepEager(benchmark::State& s) {
  run(s, Mlp{}, loom::random::normal(loom::random::key(2), {128, 784}), false);
}
void BM_MlpStepJit(benchmark::State& s) {
  run(s, Mlp{}, loom::random::normal(loom::random::key(2), {128, 784}), true);
}
void BM_CnnStepEager(benchmark::State& s) {
  run(s, loom::models::CNN{}, loom::random::normal(loom::random::key(2), {128, 28, 28, 1}), false);
}
void BM_CnnStepJit(benchmark::State& s) {
  run(s, loom::models::CNN{}, loom::random::normal(loom::random::key(2), {128, 28, 28, 1}), true);
}
BENCHMARK(BM_MlpStepEager)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpStepJit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CnnStepEager)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CnnStepJit)->Unit(benchmark::kMillisecond);

}  // namespace
