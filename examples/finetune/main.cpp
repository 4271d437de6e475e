// Fine-tunes the MNIST CNN from the newest checkpoint of examples/mnist (its --workdir) with the
// optimizer chain of a typical fine-tuning recipe: clip_by_global_norm, then adamw with a
// warmup_cosine_decay learning-rate schedule and weight decay masked to the kernels only (no
// decay on biases). The same train_step as the MNIST example; a new optimizer state.
//
//   finetune --workdir /tmp/loom_mnist --steps 100
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "mnist/train.hpp"

namespace optim = loom::optim;
using loom::Tree;

int main(int argc, char** argv) {
  mnist::Config config;
  std::int64_t steps = 100, warmup = 10;
  double peak_lr = 1e-3, weight_decay = 1e-4, clip = 1.0;
  int threads = 0;
  CLI::App app{"Fine-tune the MNIST CNN from a checkpoint with adamw + warmup cosine decay"};
  app.add_option("--workdir", config.workdir, "Where examples/mnist saved its checkpoints")
      ->capture_default_str();
  app.add_option("--data-dir", config.data_dir, "IDX dataset directory")->capture_default_str();
  app.add_option("--steps", steps, "Fine-tuning steps")->capture_default_str();
  app.add_option("--warmup", warmup, "Warmup steps")->capture_default_str();
  app.add_option("--peak-lr", peak_lr, "Peak learning rate")->capture_default_str();
  app.add_option("--weight-decay", weight_decay, "AdamW weight decay (kernels only)")
      ->capture_default_str();
  app.add_option("--clip", clip, "clip_by_global_norm's max norm")->capture_default_str();
  app.add_option("--seed", config.seed, "PRNG seed")->capture_default_str();
  app.add_option("--threads", threads, "Threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) omp_set_num_threads(threads);
  try {
    auto ds = loom::data::load_mnist(config.data_dir);
    auto [init_rng, unused] = mnist::key_chain(config.seed, 1);
    mnist::TrainState base = mnist::create_train_state(init_rng, config);
    if (auto ckpt = loom::serialization::latest_checkpoint(config.workdir)) {
      Tree restored = loom::serialization::restore_checkpoint(config.workdir, base.to_state_dict());
      base = base.replace_from_state_dict(restored);
      std::cout << "fine-tuning " << ckpt->string() << " (trained for "
                << base.step.item<std::int32_t>() << " steps)\n";
    } else {
      std::cout << "no checkpoint in " << config.workdir
                << ": fine-tuning from a fresh initialization (run examples/mnist first)\n";
    }
    auto [loss0, acc0] = mnist::evaluate(base, ds.test, config);
    std::printf("before: test_loss %.4f test_accuracy %.2f\n", loss0, 100 * acc0);

    // Decay kernels, not biases: the mask is a function of the params, as optax's mask=.
    auto kernels_only = [](const Tree& params) {
      return loom::tree_map_with_path(
          [](const loom::KeyPath& path, const loom::Array&) {
            return loom::Array::scalar(!path.empty() && path.back() == "kernel");
          },
          params);
    };
    optim::GradientTransformation tx = optim::chain(
        {optim::clip_by_global_norm(clip),
         optim::adamw(optim::warmup_cosine_decay_schedule(0.0, peak_lr, warmup, steps),
                      {.weight_decay = weight_decay, .mask = optim::Mask(kernels_only)})});
    auto state = loom::training::TrainState::create(base.apply_fn, base.params, tx);

    loom::data::BatchIterator batches(ds.train, {.batch_size = config.batch_size});
    loom::training::ProgressBar bar(std::cout, "finetune", steps, config.batch_size);
    double loss_sum = 0, acc_sum = 0;
    std::int64_t s = 0;
    for (int epoch = 1; s < steps; ++epoch) {  // as many passes over the data as the steps need
      auto data = batches.epoch(loom::random::fold_in(loom::random::key(config.seed), epoch));
      while (s < steps) {
        auto batch = data.next();
        if (!batch) break;
        auto [next, loss, acc] = mnist::train_step(std::move(state), batch->image, batch->label);
        state = std::move(next);
        loss_sum += loss;
        acc_sum += acc;
        ++s;
        bar.update(s, {{"loss", loss_sum / double(s)}, {"accuracy", acc_sum / double(s)}});
      }
    }
    bar.finish();
    auto [loss1, acc1] = mnist::evaluate(state, ds.test, config);
    std::printf("after %lld steps: test_loss %.4f test_accuracy %.2f\n",
                static_cast<long long>(steps), loss1, 100 * acc1);
  } catch (const loom::Error& e) {
    std::cerr << "finetune: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
