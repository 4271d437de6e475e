// loom's side of `make bench` (bench/run.py drives it): the workloads of issue 10 written with the
// public API as a user would (modules, loom::value_and_grad, optim), timed per iteration.
//
//   loom_workloads <workload> [--iters N] [--warmup W] [--threads T]
//
// prints one JSON line: {"system": "loom", "workload": ..., "times_ms": [...], "peak_rss_mb": ...}
// (times per iteration; bench/peers/ print the same line for PyTorch and libtorch).
// Environment: LOOM_JIT_ARENA=0 runs the *_jit steps with JitOptions::arena off;
// LOOM_JIT_INFO=1 prints the jitted step's GraphInfo (arena figures) on stderr.
//
// A variant is one more entry in workloads(): a maker returning the step function, e.g. the
// jitted steps {"cnn_train_jit", [] { return cnn_train({.jit = true}); }}: the whole step
// (value_and_grad + tx.update + apply_updates) under loom::jit, traced on the first (warmup)
// call and replayed after, as a user would write it. run.py times them for loom only and
// compares them with the peers' (eager) times of the base workload.
#include <cblas.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <loom/loom.hpp>
#include <loom/nn.hpp>
#include <loom/optim.hpp>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "models/cnn.hpp"
#include "models/resnet.hpp"
#include "models/transformer.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

namespace jnp = loom::numpy;
namespace nn = loom::nn;
namespace optim = loom::optim;
namespace rnd = loom::random;
using loom::Array;
using loom::Tree;

/// One timed iteration; a workload's maker builds the model, data and state and returns it.
using Step = std::function<void()>;

/// How a workload is run: eagerly, or with the whole training step under loom::jit.
struct Variant {
  bool jit = false;
};

/// jit's static arena (JitOptions::arena), on unless LOOM_JIT_ARENA=0: the same workload with
/// the arena off, for comparison.
loom::JitOptions jit_options() {
  const char* e = std::getenv("LOOM_JIT_ARENA");
  return {.arena = !(e != nullptr && std::strcmp(e, "0") == 0)};
}

/// LOOM_JIT_INFO=1: the jitted step's GraphInfo on stderr after its first call (stdout keeps
/// the one JSON line run.py reads).
void print_graph_info(const loom::detail::GraphInfo& i) {
  const char* e = std::getenv("LOOM_JIT_INFO");
  if (e == nullptr || std::strcmp(e, "1") != 0) return;
  std::fprintf(stderr,
               "graph: nodes %zu steps %zu fused_groups %zu fused_nodes %zu fused_updates %zu "
               "in_place %zu | peak_live %.2f MB (node by node %.2f MB) | intermediates %.2f MB, "
               "planned %.2f MB (%.0f%%), landed %.2f MB | arena %.2f MB, no reuse %.2f MB, "
               "planned peak live %.2f MB\n",
               i.num_nodes, i.num_steps, i.num_fused_groups, i.num_fused_nodes, i.num_fused_updates,
               i.num_in_place, i.peak_live_bytes / 1e6, i.unfused_peak_live_bytes / 1e6,
               i.intermediate_bytes / 1e6, i.arena_planned_bytes / 1e6,
               i.intermediate_bytes
                   ? 100.0 * double(i.arena_planned_bytes) / double(i.intermediate_bytes)
                   : 0.0,
               i.arena_landed_bytes / 1e6, i.arena_bytes / 1e6, i.arena_no_reuse_bytes / 1e6,
               i.arena_peak_live_bytes / 1e6);
}

/// An MLP of Dense layers with relu between them (Flax's usual MLP).
struct MLP : nn::Module<MLP> {
  std::vector<std::int64_t> features;
  Array call(const Array& x) const {
    Array h = x;
    for (std::size_t i = 0; i < features.size(); ++i) {
      h = nn::Dense{.features = features[i]}(h);
      if (i + 1 < features.size()) h = nn::relu(h);
    }
    return h;
  }
};

/// The 2-layer Transformer encoder of the transformer_train workload (wmt's Encoder1DBlock x 2).
struct Encoder : nn::Module<Encoder> {
  int num_layers = 2;
  bool deterministic = false;
  Array call(const Array& x) const {
    Array h = x;
    for (int i = 0; i < num_layers; ++i) {
      h = loom::models::Encoder1DBlock{
          .num_heads = 4, .qkv_dim = 256, .mlp_dim = 1024, .deterministic = deterministic}(h);
    }
    return h;
  }
};

/// A classifier training step with softmax cross-entropy and optax.sgd(0.1, momentum 0.9): the
/// step of examples/mnist/train.hpp (value_and_grad, then tx.update and apply_updates).
template <typename Model>
Step classifier_train(Model model, Array images, Array labels, Variant v) {
  Tree params = model.init(rnd::key(0), images).at("params");
  optim::GradientTransformation tx = optim::sgd(0.1, 0.9);
  struct State {
    Tree params, opt_state;
  };
  auto state = std::make_shared<State>(State{params, tx.init(params)});
  if (v.jit) {
    // The step as a pure function of everything that changes (params, state, batch), so the
    // replay sees new values; model and tx are captured (static).
    auto step = loom::jit(
        [model, tx](const Tree& params, const Tree& opt_state, const Array& images,
                    const Array& labels) {
          auto loss_fn = [&](const Tree& p) {
            Array logits = model.apply(Tree{{"params", p}}, images);
            return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
          };
          auto [loss, grads] = loom::value_and_grad(loss_fn)(params);
          auto [updates, new_state] = tx.update(grads, opt_state, std::nullopt);
          return std::make_tuple(optim::apply_updates(params, updates), new_state, loss);
        },
        jit_options());
    auto calls = std::make_shared<int>(0);
    return [=] {
      auto [p, s, loss] = step(state->params, state->opt_state, images, labels);
      if (++*calls == 2) print_graph_info(step.graph_info(p, s, images, labels));
      state->params = std::move(p);
      state->opt_state = std::move(s);
      (void)loss.template item<float>();
    };
  }
  return [=] {
    auto loss_fn = [&](const Tree& p) {
      Array logits = model.apply(Tree{{"params", p}}, images);
      return jnp::mean(optim::softmax_cross_entropy_with_integer_labels(logits, labels));
    };
    auto [loss, grads] = loom::value_and_grad(loss_fn)(state->params);
    auto [updates, opt_state] =
        tx.update(std::move(grads), std::move(state->opt_state), std::nullopt);
    state->opt_state = std::move(opt_state);
    state->params = optim::apply_updates(std::move(state->params), updates);
    (void)loss.template item<float>();  // the step is done when its loss is read
  };
}

Step cnn_train(Variant v) {
  Array images = rnd::normal(rnd::key(1), {128, 28, 28, 1});
  Array labels = rnd::randint(rnd::key(2), {128}, 0, 10);
  return classifier_train(loom::models::CNN{}, images, labels, v);
}

Step mlp_train(Variant v) {
  Array x = rnd::normal(rnd::key(1), {128, 784});
  Array labels = rnd::randint(rnd::key(2), {128}, 0, 10);
  return classifier_train(MLP{.features = {512, 512, 10}}, x, labels, v);
}

Step mlp_infer_b1(Variant) {
  MLP model{.features = {128, 10}};
  Array x = rnd::normal(rnd::key(1), {1, 784});
  Tree variables = model.init(rnd::key(0), x);
  return [=] { (void)model.apply(variables, x).data<float>(); };
}

/// mlp_infer_b1 from 2 threads at once on the same variables: one iteration is 100 calls on each
/// thread; run.py divides by the 200 calls for a per-call (throughput) time.
Step concurrent_infer(Variant) {
  MLP model{.features = {128, 10}};
  Array x = rnd::normal(rnd::key(1), {1, 784});
  Tree variables = model.init(rnd::key(0), x);
  return [=] {
    auto worker = [&] {
      for (int i = 0; i < 100; ++i) (void)model.apply(variables, x).data<float>();
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
  };
}

Step resnet_infer(Variant) {
  auto model = loom::models::ResNet18(/*num_classes=*/1000);
  Array x = rnd::normal(rnd::key(1), {8, 64, 64, 3});
  Tree variables = model.init(rnd::key(0), x, /*train=*/false);
  return [=] { (void)model.apply(variables, x, /*train=*/false).data<float>(); };
}

/// The loss is mean(square(encoder(x))); the optimizer optax.sgd(0.1, 0.9); dropout 0.1 on
/// (attention weights, attention output, MLP), a new dropout key every step.
Step transformer_train(Variant v) {
  Encoder model;
  Array x = rnd::normal(rnd::key(1), {16, 128, 256});
  Tree params = model.init(rnd::key(0), x).at("params");
  optim::GradientTransformation tx = optim::sgd(0.1, 0.9);
  struct State {
    Tree params, opt_state;
    std::uint32_t step = 0;
  };
  auto state = std::make_shared<State>(State{params, tx.init(params)});
  if (v.jit) {
    // The dropout key is an argument (its raw uint32 data): a new key replays the same graph.
    auto step = loom::jit(
        [model, tx](const Tree& params, const Tree& opt_state, const Array& key_data,
                    const Array& x) {
          const rnd::Key dropout_key = rnd::wrap_key_data(key_data);
          auto loss_fn = [&](const Tree& p) {
            Array y = model.apply(Tree{{"params", p}}, {.rngs = {{"dropout", dropout_key}}}, x);
            return jnp::mean(jnp::square(y));
          };
          auto [loss, grads] = loom::value_and_grad(loss_fn)(params);
          auto [updates, new_state] = tx.update(grads, opt_state, std::nullopt);
          return std::make_tuple(optim::apply_updates(params, updates), new_state, loss);
        },
        jit_options());
    return [=] {
      const rnd::Key dropout_key = rnd::fold_in(rnd::key(3), state->step++);
      auto [p, s, loss] = step(state->params, state->opt_state, rnd::key_data(dropout_key), x);
      state->params = std::move(p);
      state->opt_state = std::move(s);
      (void)loss.item<float>();
    };
  }
  return [=] {
    const rnd::Key dropout_key = rnd::fold_in(rnd::key(3), state->step++);
    auto loss_fn = [&](const Tree& p) {
      Array y = model.apply(Tree{{"params", p}}, {.rngs = {{"dropout", dropout_key}}}, x);
      return jnp::mean(jnp::square(y));
    };
    auto [loss, grads] = loom::value_and_grad(loss_fn)(state->params);
    auto [updates, opt_state] =
        tx.update(std::move(grads), std::move(state->opt_state), std::nullopt);
    state->opt_state = std::move(opt_state);
    state->params = optim::apply_updates(std::move(state->params), updates);
    (void)loss.item<float>();
  };
}

/// The machine's sgemm peak: OpenBLAS on a large square problem (not a loom workload; run.py
/// turns its time into GFLOP/s).
Step sgemm_peak(Variant) {
  constexpr int n = 2048;
  auto a = std::make_shared<std::vector<float>>(std::size_t{n} * n, 0.5f);
  auto b = std::make_shared<std::vector<float>>(std::size_t{n} * n, 0.25f);
  auto c = std::make_shared<std::vector<float>>(std::size_t{n} * n, 0.0f);
  return [=] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a->data(), n, b->data(),
                n, 0.0f, c->data(), n);
  };
}

const std::map<std::string, std::function<Step()>>& workloads() {
  static const std::map<std::string, std::function<Step()>> w = {
      {"cnn_train", [] { return cnn_train({}); }},
      {"cnn_train_jit", [] { return cnn_train({.jit = true}); }},
      {"mlp_train", [] { return mlp_train({}); }},
      {"mlp_train_jit", [] { return mlp_train({.jit = true}); }},
      {"mlp_infer_b1", [] { return mlp_infer_b1({}); }},
      {"resnet_infer", [] { return resnet_infer({}); }},
      {"transformer_train", [] { return transformer_train({}); }},
      {"transformer_train_jit", [] { return transformer_train({.jit = true}); }},
      {"concurrent_infer", [] { return concurrent_infer({}); }},
      {"sgemm_peak", [] { return sgemm_peak({}); }},
  };
  return w;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int usage() {
  std::fprintf(stderr,
               "usage: loom_workloads <workload> [--iters N] [--warmup W] [--threads T]\n"
               "workloads:");
  for (const auto& [name, _] : workloads()) std::fprintf(stderr, " %s", name.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string name = argv[1];
  int iters = 10, warmup = 2, threads = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--iters") {
      iters = value;
    } else if (flag == "--warmup") {
      warmup = value;
    } else if (flag == "--threads") {
      threads = value;
    } else {
      return usage();
    }
  }
  auto it = workloads().find(name);
  if (it == workloads().end()) return usage();
  if (threads > 0) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    openblas_set_num_threads(threads);
  }
  try {
    Step step = it->second();
    for (int i = 0; i < warmup; ++i) step();
    std::vector<double> times;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step();
      const auto t1 = std::chrono::steady_clock::now();
      times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::printf("{\"system\": \"loom\", \"workload\": \"%s\", \"times_ms\": [", name.c_str());
    for (std::size_t i = 0; i < times.size(); ++i) {
      std::printf("%s%.6f", i ? ", " : "", times[i]);
    }
    std::printf("], \"peak_rss_mb\": %.1f}\n", peak_rss_mb());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom_workloads %s: %s\n", name.c_str(), e.what());
    return 1;
  }
  return 0;
}
