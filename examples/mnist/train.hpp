// Flax's examples/mnist/train.py in loom: create_train_state, apply_model, train_epoch and
// train_and_evaluate, with checkpoints in Flax's TrainState layout, a metrics CSV and an SVG plot
// in the workdir, and --restore resuming from the newest checkpoint. main.cpp is the command
// line; tests/mnist_example_test.cpp runs the same functions on a small dataset.
//
// Under mpirun every process trains on its slice of each global batch (loom::distributed):
// the same permutation everywhere, gradients and metrics averaged in one collective per step,
// the test set split between the processes; process 0 alone writes checkpoints and metrics.
//
//   mnist::Config config{.epochs = 5, .workdir = "/tmp/mnist"};
//   auto datasets = loom::data::load_mnist(config.data_dir);
//   mnist::TrainResult r = mnist::train_and_evaluate(config, datasets, std::cout);
#pragma once

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <loom/data.hpp>
#include <loom/distributed.hpp>
#include <loom/loom.hpp>
#include <loom/optim.hpp>
#include <loom/serialization.hpp>
#include <loom/training/progress.hpp>
#include <loom/training/train_state.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/cnn.hpp"

namespace mnist {

namespace jnp = loom::numpy;
namespace optim = loom::optim;
namespace rnd = loom::random;
using loom::Array;
using loom::Tree;
using loom::training::TrainState;

/// The example's hyperparameters (Flax's configs/default.py) and where things go.
struct Config {
  int epochs = 5;  // about 3 minutes on 2 cores; reaches 90% test accuracy on Fashion-MNIST
  std::int64_t batch_size = 128;
  double learning_rate = 0.1;
  double momentum = 0.9;
  std::int64_t seed = 0;
  std::string data_dir = loom::data::kFashionMnistDir;
  std::string workdir = "/tmp/loom_mnist";
  bool restore = false;                   // resume from the newest checkpoint in workdir
  int keep = 3;                           // checkpoints kept
  std::int64_t max_steps_per_epoch = -1;  // < 0: the whole training set (tests use a few)
  std::int64_t eval_batch_size = 1000;
};

/// Flax's create_train_state: CNN params from init on a (1, 28, 28, 1) batch of ones, and
/// optax.sgd(learning_rate, momentum).
inline TrainState create_train_state(const rnd::Key& key, const Config& config) {
  loom::models::CNN cnn;
  Tree params = cnn.init(key, jnp::ones({1, 28, 28, 1})).at("params");
  return TrainState::create(
      [cnn](const Tree& variables, const Array& x) { return cnn.apply(variables, x); },
      std::move(params), optim::sgd(config.learning_rate, config.momentum));
}

/// Loss and accuracy of a batch (Flax's apply_model without the gradient).
inline std::pair<double, double> evaluate_batch(const TrainState& state, const Array& images,
                                                const Array& labels) {
  Array logits = state.apply(images);
  Array loss = jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
  return {loss.item<double>(), optim::accuracy(logits, labels).item<double>()};
}

/// One SGD step (Flax's apply_model + update_model): (next state, loss, accuracy).
inline std::tuple<TrainState, double, double> train_step(TrainState state, const Array& images,
                                                         const Array& labels) {
  auto loss_fn = [&](const Tree& params) {
    Array logits = state.apply_fn(Tree{{"params", params}}, images);
    Array loss = jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
    return std::make_pair(loss, logits);
  };
  auto [value, grads] = loom::value_and_grad(loss_fn, {.has_aux = true})(state.params);
  Array loss = value.first, acc = optim::accuracy(value.second, labels);
  if (loom::distributed::process_count() > 1) {
    // Data parallel: each process saw its slice of the global batch; one bucketed pmean gives
    // every process the global gradient and metrics (equal slices: the mean of means).
    Tree mean = loom::distributed::all_reduce_mean(
        Tree{{"grads", std::move(grads)}, {"loss", loss}, {"accuracy", acc}});
    grads = mean.at("grads");
    loss = mean.at("loss").leaf();
    acc = mean.at("accuracy").leaf();
  }
  return {std::move(state).apply_gradients(grads), loss.item<double>(), acc.item<double>()};
}

/// The key of each epoch, as Flax's example derives it: rng = key(seed);
/// rng, init_rng = split(rng); then per epoch rng, input_rng = split(rng). Returns
/// (init_rng, input_rng of epochs 1..epochs).
inline std::pair<rnd::Key, std::vector<rnd::Key>> key_chain(std::int64_t seed, int epochs) {
  rnd::Key keys = rnd::split(rnd::key(seed));
  rnd::Key rng = keys[0], init_rng = keys[1];
  std::vector<rnd::Key> inputs;
  for (int e = 0; e < epochs; ++e) {
    keys = rnd::split(rng);
    rng = keys[0];
    inputs.push_back(keys[1]);
  }
  return {init_rng, inputs};
}

/// Mean loss and accuracy over a dataset, in batches of config.eval_batch_size. With several
/// processes each evaluates a contiguous share and the sums are all-reduced.
inline std::pair<double, double> evaluate(const TrainState& state,
                                          const loom::data::ImageDataset& ds,
                                          const Config& config) {
  const loom::data::BatchOptions options{
      .batch_size = config.eval_batch_size, .shuffle = false, .drop_remainder = false};
  const int rank = loom::distributed::process_index(), procs = loom::distributed::process_count();
  std::vector<std::int64_t> share;
  for (std::int64_t i = ds.size * rank / procs; i < ds.size * (rank + 1) / procs; ++i)
    share.push_back(i);
  loom::data::Epoch epoch(ds, options, std::move(share));
  double loss = 0, acc = 0;
  std::int64_t n = 0;
  while (auto batch = epoch.next()) {
    const std::int64_t b = batch->label.size();
    auto [l, a] = evaluate_batch(state, batch->image, batch->label);
    loss += l * double(b);
    acc += a * double(b);
    n += b;
  }
  if (procs > 1) {
    Array sums =
        loom::distributed::all_reduce_sum(Array(std::vector<double>{loss, acc, double(n)}, {3}),
                                          {.order = loom::distributed::ReduceOrder::deterministic});
    const auto v = sums.to_vector<double>();
    return {v[0] / v[2], v[1] / v[2]};
  }
  return {loss / double(n), acc / double(n)};
}

/// The order BatchIterator gives an epoch: jax.random.permutation(key, ds.size).
inline std::vector<std::int64_t> permutation(const rnd::Key& key,
                                             const loom::data::ImageDataset& ds) {
  const auto p = rnd::permutation(key, ds.size).to_vector<std::int32_t>();
  return {p.begin(), p.end()};
}

struct TrainResult {
  TrainState state;
  loom::training::MetricsLog log;
  double examples_per_second = 0;
  std::int64_t steps_run = 0;  // training steps this call ran (after a restore: the new ones)
};

inline const std::vector<std::string>& metric_columns() {
  static const std::vector<std::string> columns = {"epoch",          "step",      "train_loss",
                                                   "train_accuracy", "test_loss", "test_accuracy"};
  return columns;
}

/// Flax's train_and_evaluate: trains config.epochs epochs, evaluating on the test set after each,
/// saving a checkpoint (Flax's TrainState state dict) and rewriting metrics.csv and metrics.svg
/// in config.workdir. With config.restore it resumes after the newest checkpoint, with the same
/// data order and keys as an uninterrupted run.
inline TrainResult train_and_evaluate(const Config& config, const loom::data::MnistDataset& ds,
                                      std::ostream& out) {
  namespace fs = std::filesystem;
  auto [init_rng, epoch_keys] = key_chain(config.seed, config.epochs);
  TrainState state = create_train_state(init_rng, config);
  loom::training::MetricsLog log(metric_columns());
  const fs::path workdir = config.workdir;
  const fs::path csv = workdir / "metrics.csv", svg = workdir / "metrics.svg";
  namespace dist = loom::distributed;
  const int procs = dist::process_count();
  const bool writer = dist::process_index() == 0;  // checkpoints and metrics: process 0 only
  if (writer) fs::create_directories(workdir);
  if (config.batch_size % procs != 0) {
    throw loom::Error("mnist: --batch-size " + std::to_string(config.batch_size) +
                      " must be a multiple of the " + std::to_string(procs) + " processes");
  }

  loom::data::BatchIterator batches(ds.train, {.batch_size = config.batch_size});
  std::int64_t steps_per_epoch = batches.num_batches();
  if (config.max_steps_per_epoch >= 0) {
    steps_per_epoch = std::min(steps_per_epoch, config.max_steps_per_epoch);
  }
  int first_epoch = 1;
  if (config.restore && loom::serialization::latest_checkpoint(workdir)) {
    Tree restored = loom::serialization::restore_checkpoint(workdir, state.to_state_dict());
    state = state.replace_from_state_dict(restored);
    const std::int64_t step = state.step.item<std::int32_t>();
    first_epoch = static_cast<int>(step / std::max<std::int64_t>(steps_per_epoch, 1)) + 1;
    if (fs::exists(csv)) {
      log = loom::training::MetricsLog::read_csv(csv.string());
      if (log.columns() != metric_columns()) {
        throw loom::Error("mnist: " + csv.string() + " has other columns than this program writes");
      }
      log.truncate_after("step", double(step));
    }
    out << "restored " << loom::serialization::latest_checkpoint(workdir)->string() << " (step "
        << step << "), resuming at epoch " << first_epoch << "\n";
  }
  // Every process read the checkpoint itself: they must agree on where they resume.
  dist::check_same("restored step (is --workdir shared by every process?)",
                   std::to_string(state.step.item<std::int32_t>()));

  double examples_per_second = 0;
  std::int64_t steps_run = 0;
  for (int epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    const rnd::Key& epoch_key = epoch_keys[static_cast<std::size_t>(epoch - 1)];
    // Several processes: the same global permutation (BatchIterator's), each taking its slice
    // of every global batch.
    auto data = procs == 1 ? batches.epoch(epoch_key)
                           : loom::data::Epoch(ds.train, {.batch_size = config.batch_size / procs},
                                               dist::shard_order(permutation(epoch_key, ds.train),
                                                                 config.batch_size));
    loom::training::ProgressBar bar(out, "epoch " + std::to_string(epoch), steps_per_epoch,
                                    config.batch_size);
    double loss_sum = 0, acc_sum = 0;
    std::int64_t steps = 0;
    while (steps < steps_per_epoch) {
      auto batch = data.next();
      if (!batch) break;
      auto [next, loss, acc] = train_step(std::move(state), batch->image, batch->label);
      state = std::move(next);
      loss_sum += loss;
      acc_sum += acc;
      ++steps;
      ++steps_run;
      bar.update(steps,
                 {{"loss", loss_sum / double(steps)}, {"accuracy", acc_sum / double(steps)}});
    }
    bar.finish();
    examples_per_second = bar.examples_per_second();
    const double train_loss = loss_sum / double(std::max<std::int64_t>(steps, 1));
    const double train_acc = acc_sum / double(std::max<std::int64_t>(steps, 1));
    auto [test_loss, test_acc] = evaluate(state, ds.test, config);
    char line[256];
    std::snprintf(line, sizeof line,
                  "epoch %d: train_loss %.4f train_accuracy %.2f test_loss %.4f test_accuracy %.2f",
                  epoch, train_loss, 100 * train_acc, test_loss, 100 * test_acc);
    out << line << "\n" << std::flush;
    const std::int64_t step = state.step.item<std::int32_t>();
    log.add({double(epoch), double(step), train_loss, train_acc, test_loss, test_acc});
    if (!writer) continue;
    // Metrics first, then the checkpoint: a kill in between leaves a row newer than the newest
    // checkpoint, which --restore drops (truncate_after), never a checkpoint without its row.
    log.write_csv(csv.string());
    log.write_svg(svg.string(), "epoch",
                  {{"train_loss", "test_loss"}, {"train_accuracy", "test_accuracy"}});
    loom::serialization::save_checkpoint(workdir, state.to_state_dict(), step, "checkpoint_",
                                         config.keep, /*overwrite=*/true);
  }
  return {std::move(state), std::move(log), examples_per_second, steps_run};
}

}  // namespace mnist
