// Trains the CNN of Flax's examples/mnist on Fashion-MNIST (Debian's dataset-fashion-mnist) or
// any IDX dataset, as Flax's example does: SGD with momentum, per-epoch evaluation, checkpoints
// in Flax's TrainState layout, metrics as CSV and an SVG plot. `make demo` runs it.
//
//   mnist --epochs 2 --workdir /tmp/loom_mnist
//   mnist --restore --epochs 3 --workdir /tmp/loom_mnist   # resumes after the newest checkpoint
//   mpirun -np 2 --allow-run-as-root mnist --epochs 2      # data parallel over 2 processes
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <loom/distributed.hpp>
#include <ostream>
#include <streambuf>
#include <string>

#include "train.hpp"

namespace {
// Where the other processes' progress goes: nowhere (process 0 prints for the job).
struct NullBuffer : std::streambuf {
  int overflow(int c) override { return c; }
};
}  // namespace

int main(int argc, char** argv) {
  namespace dist = loom::distributed;
  dist::Guard distributed;  // one process without mpirun
  const bool multi = dist::process_count() > 1;
  // An error seen by one process ends all of them (the others would wait in a collective).
  auto fail = [&](int code) {
    if (multi) dist::abort(code);
    return code;
  };
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : fail(code);
  }
  if (config.epochs < 1 || config.batch_size < 1) {
    std::cerr << "mnist: --epochs and --batch-size must be positive\n";
    return fail(2);
  }
  if (threads == 0 && multi) {
    // Processes sharing a machine split its cores instead of each taking them all.
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int per_node = local ? std::max(1, std::atoi(local)) : 1;
    threads = std::max(1, omp_get_num_procs() / per_node);
  }
  if (threads > 0) omp_set_num_threads(threads);
  NullBuffer null_buffer;
  std::ostream null_stream(&null_buffer);
  std::ostream& out = dist::process_index() == 0 ? std::cout : null_stream;

  try {
    std::string args;
    for (int i = 1; i < argc; ++i) args += std::string(i > 1 ? " " : "") + argv[i];
    dist::check_same("arguments", args);
    const auto start = std::chrono::steady_clock::now();
    loom::data::MnistDataset datasets = loom::data::load_mnist(config.data_dir);
    if (multi) {
      out << "distributed: " << dist::process_count() << " processes x " << threads << " threads, "
          << config.batch_size / dist::process_count() << " examples each per step of "
          << config.batch_size << "\n";
    }
    out << "data: " << config.data_dir << " (" << datasets.train.size << " train, "
        << datasets.test.size << " test images of " << datasets.train.rows << "x"
        << datasets.train.cols << ")\n";
    out << loom::nn::tabulate(loom::models::CNN{}, loom::random::key(0),
                              loom::numpy::ones({1, 28, 28, 1}));
    dist::reset_comm_stats();
    mnist::TrainResult result = mnist::train_and_evaluate(config, datasets, out);
    const dist::CommStats comm = dist::comm_stats();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const long long steps = result.state.step.item<std::int32_t>();
    if (dist::process_index() != 0) return 0;
    std::printf(
        "done in %.1f s (%.0f examples/s in the last epoch); workdir %s: checkpoint_%lld, "
        "metrics.csv, metrics.svg\n",
        secs, result.examples_per_second, config.workdir.c_str(), steps);
    if (multi) {
      // Time inside collectives, waiting for the slower process included.
      std::printf("communication: %.2f ms per step (%.1f s in %lld collectives, %.1f MB sent)\n",
                  result.steps_run ? 1e3 * comm.seconds / double(result.steps_run) : 0.0,
                  comm.seconds, static_cast<long long>(comm.calls), double(comm.bytes) / 1e6);
    }
  } catch (const loom::Error& e) {
    std::cerr << "mnist";
    if (multi) std::cerr << " (process " << dist::process_index() << ")";
    std::cerr << ": " << e.what() << "\n";
    return fail(1);
  }
  return 0;
}
