// Trains the CNN of Flax's examples/mnist on Fashion-MNIST (Debian's dataset-fashion-mnist) or
// any IDX dataset, as Flax's example does: SGD with momentum, per-epoch evaluation, checkpoints
// in Flax's TrainState layout, metrics as CSV and an SVG plot. `make demo` runs it.
//
//   mnist --epochs 2 --workdir /tmp/loom_mnist
//   mnist --restore --epochs 3 --workdir /tmp/loom_mnist   # resumes after the newest checkpoint
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "train.hpp"

int main(int argc, char** argv) {
  mnist::Config config;
  int threads = 0;
  CLI::App app{"Train Flax's MNIST CNN with loom (Fashion-MNIST by default)"};
  app.add_option("--epochs", config.epochs, "Number of training epochs")->capture_default_str();
  app.add_option("--batch-size", config.batch_size, "Examples per step")->capture_default_str();
  app.add_option("--learning-rate", config.learning_rate, "SGD learning rate")
      ->capture_default_str();
  app.add_option("--momentum", config.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--seed", config.seed, "PRNG seed (jax.random.key(seed))")->capture_default_str();
  app.add_option("--data-dir", config.data_dir,
                 "Directory with the four IDX files (train-images-idx3-ubyte[.gz], ...)")
      ->capture_default_str();
  app.add_option("--workdir", config.workdir, "Where checkpoints, metrics.csv and metrics.svg go")
      ->capture_default_str();
  app.add_option("--threads", threads, "Threads (0: all cores)")->capture_default_str();
  app.add_option("--keep", config.keep, "Checkpoints to keep")->capture_default_str();
  app.add_option("--steps-per-epoch", config.max_steps_per_epoch,
                 "Limit the steps of each epoch (-1: the whole training set)")
      ->capture_default_str();
  app.add_flag("--restore", config.restore, "Resume from the newest checkpoint in --workdir");
  CLI11_PARSE(app, argc, argv);
  if (config.epochs < 1 || config.batch_size < 1) {
    std::cerr << "mnist: --epochs and --batch-size must be positive\n";
    return 2;
  }
  if (threads > 0) omp_set_num_threads(threads);

  try {
    const auto start = std::chrono::steady_clock::now();
    loom::data::MnistDataset datasets = loom::data::load_mnist(config.data_dir);
    std::cout << "data: " << config.data_dir << " (" << datasets.train.size << " train, "
              << datasets.test.size << " test images of " << datasets.train.rows << "x"
              << datasets.train.cols << ")\n";
    std::cout << loom::nn::tabulate(loom::models::CNN{}, loom::random::key(0),
                                    loom::numpy::ones({1, 28, 28, 1}));
    mnist::TrainResult result = mnist::train_and_evaluate(config, datasets, std::cout);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "done in %.1f s (%.0f examples/s in the last epoch); workdir %s: checkpoint_%lld, "
        "metrics.csv, metrics.svg\n",
        secs, result.examples_per_second, config.workdir.c_str(),
        static_cast<long long>(result.state.step.item<std::int32_t>()));
  } catch (const loom::Error& e) {
    std::cerr << "mnist: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
