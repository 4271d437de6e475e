// The optimizers of optax/_src/alias.py, as chains of loom/optim/transform.hpp, with optax's
// defaults and optax's state layout.
//
//   auto tx = optim::sgd(0.1, 0.9);                    // {"0": {"trace": ...}, "1": {}}
//   auto tx = optim::adam(1e-3);                       // {"0": {"count", "mu", "nu"}, "1": {}}
//   auto tx = optim::adamw(optim::warmup_cosine_decay_schedule(0, 1e-3, 100, 1000),
//                          {.weight_decay = 1e-2});
#pragma once

#include <optional>

#include "loom/optim/base.hpp"
#include "loom/optim/transform.hpp"

namespace loom::optim {

/// optax.sgd: chain(trace(momentum, nesterov) or identity(), scale_by_learning_rate(lr)).
///   auto tx = optim::sgd(0.1, 0.9);   // momentum 0.9; optim::sgd(0.1) has none (state {})
GradientTransformation sgd(ScalarOrSchedule learning_rate,
                           std::optional<double> momentum = std::nullopt, bool nesterov = false);

/// optax.adam: chain(scale_by_adam(b1, b2, eps, eps_root, nesterov), scale_by_learning_rate).
///   auto tx = optim::adam(1e-3, {.b2 = 0.99});
GradientTransformation adam(ScalarOrSchedule learning_rate, AdamOptions options = {});

/// Options of optax.adamw beyond Adam's.
struct AdamWOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
  double eps_root = 0.0;
  ScalarOrSchedule weight_decay = 1e-4;
  std::optional<Mask> mask = std::nullopt;
  bool nesterov = false;
};
/// optax.adamw: chain(scale_by_adam, add_decayed_weights(weight_decay, mask),
/// scale_by_learning_rate). State {"0": adam's, "1": {} (masked: {"inner_state": {}}), "2": {}}.
GradientTransformation adamw(ScalarOrSchedule learning_rate, AdamWOptions options = {});

/// Options of optax.rmsprop.
struct RmspropOptions {
  double decay = 0.9;
  double eps = 1e-8;
  double initial_scale = 0.0;
  bool eps_in_sqrt = true;
  std::optional<double> momentum = std::nullopt;
  bool nesterov = false;
  bool bias_correction = false;
};
/// optax.rmsprop (centered=false): chain(scale_by_rms, scale_by_learning_rate,
/// trace(momentum) or identity()).
GradientTransformation rmsprop(ScalarOrSchedule learning_rate, RmspropOptions options = {});

/// optax.adagrad: chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate).
GradientTransformation adagrad(ScalarOrSchedule learning_rate,
                               double initial_accumulator_value = 0.1, double eps = 1e-7);

/// Options of optax.lamb.
struct LambOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-6;
  double eps_root = 0.0;
  ScalarOrSchedule weight_decay = 0.0;
  std::optional<Mask> mask = std::nullopt;
};
/// optax.lamb: chain(scale_by_adam, add_decayed_weights, scale_by_trust_ratio,
/// scale_by_learning_rate). Needs params in update.
GradientTransformation lamb(ScalarOrSchedule learning_rate, LambOptions options = {});

/// Options of optax.lion.
struct LionOptions {
  double b1 = 0.9;
  double b2 = 0.99;
  ScalarOrSchedule weight_decay = 1e-3;
  std::optional<Mask> mask = std::nullopt;
};
/// optax.lion: chain(scale_by_lion(b1, b2), add_decayed_weights, scale_by_learning_rate).
/// Needs params in update (weight decay).
GradientTransformation lion(ScalarOrSchedule learning_rate, LionOptions options = {});

}  // namespace loom::optim
