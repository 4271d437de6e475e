// BatchNorm and Dropout with `train` flowing as the design note says: the train flag is a call
// argument of the top module, which fixes BatchNorm's use_running_average and Dropout's
// deterministic on the templates it hands down (the note's `partial(nn.Dropout, ...)`), while
// a setup-style submodule takes `deterministic` at call time. Training updates batch_stats
// through apply_mutable; evaluation uses the running averages.
#include <cstdio>

#include <loom/loom.hpp>
#include <loom/optim.hpp>
#include <loom/training/train_state.hpp>

namespace nn = loom::nn;
namespace jnp = loom::numpy;
namespace optim = loom::optim;
namespace rnd = loom::random;
using loom::Array;
using loom::Tree;

// A block that never hears of train vs eval: it uses the templates it is given.
struct Block : nn::Module<Block> {
  std::int64_t features = 32;
  nn::BatchNorm norm;
  nn::Dropout dropout;
  Array call(const Array& x) const {
    return dropout(nn::relu(norm(nn::Dense{.features = features, .use_bias = false}(x))));
  }
};

struct Classifier : nn::Module<Classifier> {
  double drop_rate = 0.2;
  // setup style: declared once, `deterministic` passed where it is used
  auto head_dropout() const { return child("head_dropout", nn::Dropout{.rate = drop_rate}); }

  Array call(const Array& x, bool train) const {
    auto norm = nn::BatchNorm{.use_running_average = !train, .momentum = 0.9};
    auto dropout = nn::Dropout{.rate = drop_rate, .deterministic = !train};
    Array h = Block{.norm = norm, .dropout = dropout}(x);  // Block_0
    h = Block{.norm = norm, .dropout = dropout}(h);        // Block_1
    h = head_dropout()(h, /*deterministic=*/!train);
    return nn::Dense{.features = 2}(h);
  }
};

int main() {
  // Two Gaussian blobs in 8 dimensions around -0.5 and +0.5, labelled 0 and 1.
  const std::int64_t n = 256;
  std::vector<int> label_values(static_cast<std::size_t>(n));
  std::vector<float> centres(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    label_values[static_cast<std::size_t>(i)] = static_cast<int>(i % 2);
    centres[static_cast<std::size_t>(i)] = i % 2 ? 0.5f : -0.5f;
  }
  Array labels(label_values, loom::Shape{n});
  Array x = rnd::normal(rnd::key(1), {n, 8}) + Array(centres, loom::Shape{n, 1});

  Classifier model;
  Tree variables = model.init(rnd::key(0), x, /*train=*/false);
  std::printf("%s", nn::tabulate(model, rnd::key(0), x, false).c_str());

  auto state = loom::training::TrainState::create(
      [model](const Tree& v, const Array& in) { return model.apply(v, in, /*train=*/false); },
      variables.at("params"), optim::sgd(0.1, 0.9), {{"batch_stats", variables.at("batch_stats")}});

  for (int step = 0; step < 30; ++step) {
    const rnd::Key dropout_key = rnd::fold_in(rnd::key(2), step);
    Tree batch_stats;
    auto loss_fn = [&](const Tree& params) {
      Tree v = {{"params", params}, {"batch_stats", state.extra.at("batch_stats")}};
      // train=true: BatchNorm uses batch statistics and updates the running averages, which
      // only apply_mutable may write; Dropout draws from the "dropout" stream.
      auto [logits, updates] = model.apply_mutable(
          v, {.rngs = {{"dropout", dropout_key}}, .mutable_collections = "batch_stats"}, x, true);
      batch_stats = loom::stop_gradient(updates.at("batch_stats"));
      return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
    };
    auto [loss, grads] = loom::value_and_grad(loss_fn)(state.params);
    state = std::move(state).apply_gradients(grads, {{"batch_stats", batch_stats}});
    if (step % 10 == 0 || step == 29) {
      Array eval_logits = state.apply(x);  // train=false: running averages, no dropout
      std::printf("step %2d: train loss %.4f  eval accuracy %.3f\n", step, loss.item<double>(),
                  optim::accuracy(eval_logits, labels).item<double>());
    }
  }
  // The running mean moved away from its initial zeros; params and batch_stats stay separate.
  const Array mean = state.extra.at("batch_stats").at("Block_0").at("BatchNorm_0").at("mean").leaf();
  std::printf("batch_stats/Block_0/BatchNorm_0/mean[0:3] = %.4f %.4f %.4f\n",
              mean.to_vector<double>()[0], mean.to_vector<double>()[1],
              mean.to_vector<double>()[2]);
  return 0;
}
