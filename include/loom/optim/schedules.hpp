// Schedules of optax/schedules: functions of the step count returning a hyper-parameter value.
// A transformation that takes a ScalarOrSchedule keeps the count in its state ({"count"}).
// Each schedule here has a host form and an Array form in loom ops (Schedule::traceable()): the
// transformations evaluate the Array form on the int32 count, so a training step with any of
// them runs under loom::jit; both forms give the same doubles. join_schedules is traceable when
// all its parts are.
//   auto step = loom::jit(train_step);   // with optim::adam(warmup_cosine_decay_schedule(...))
//
//   optim::Schedule lr = optim::warmup_cosine_decay_schedule(0.0, 1e-3, 100, 1000);
//   lr(0) == 0.0;  lr(100) == 1e-3;  lr(1000) == 0.0
//   auto tx = optim::sgd(optim::exponential_decay(0.1, 1000, 0.5, {.staircase = true}));
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loom/optim/base.hpp"

namespace loom::optim {

/// optax.constant_schedule: always `value`.
Schedule constant_schedule(double value);

/// optax.polynomial_schedule: (init - end) * (1 - t / transition_steps)^power + end, t =
/// clip(step - transition_begin, 0, transition_steps); constant init for transition_steps <= 0.
Schedule polynomial_schedule(double init_value, double end_value, double power,
                             std::int64_t transition_steps, std::int64_t transition_begin = 0);

/// optax.linear_schedule: polynomial_schedule with power 1.
///   auto warmup = optim::linear_schedule(0.0, 0.1, 500);
Schedule linear_schedule(double init_value, double end_value, std::int64_t transition_steps,
                         std::int64_t transition_begin = 0);

/// optax.cosine_decay_schedule: init * ((1 - alpha) * (0.5 (1 + cos(pi t / T)))^exponent + alpha),
/// t = min(step, T). decay_steps must be positive (loom::Error).
Schedule cosine_decay_schedule(double init_value, std::int64_t decay_steps, double alpha = 0.0,
                               double exponent = 1.0);

/// optax.warmup_cosine_decay_schedule: linear from init to peak over warmup_steps, then cosine
/// decay to end_value at decay_steps (decay_steps counts the warmup, as optax).
Schedule warmup_cosine_decay_schedule(double init_value, double peak_value,
                                      std::int64_t warmup_steps, std::int64_t decay_steps,
                                      double end_value = 0.0, double exponent = 1.0);

/// The optional arguments of optax.exponential_decay.
struct ExponentialDecayOptions {
  std::int64_t transition_begin = 0;
  bool staircase = false;
  std::optional<double> end_value = std::nullopt;  // a floor (decay_rate < 1) or ceiling
};
/// optax.exponential_decay: init * decay_rate^((step - begin) / transition_steps) (floored
/// exponent with staircase), init before transition_begin, clipped at end_value.
Schedule exponential_decay(double init_value, std::int64_t transition_steps, double decay_rate,
                           ExponentialDecayOptions options = {});

/// optax.piecewise_constant_schedule: init times every scale whose boundary is <= step.
///   auto lr = optim::piecewise_constant_schedule(1.0, {{100, 0.1}, {200, 0.01}});
Schedule piecewise_constant_schedule(double init_value,
                                     std::map<std::int64_t, double> boundaries_and_scales = {});

/// optax.join_schedules: schedules[i + 1](step - boundaries[i]) from boundaries[i] on.
/// Needs boundaries.size() == schedules.size() - 1.
Schedule join_schedules(std::vector<Schedule> schedules, std::vector<std::int64_t> boundaries);

/// Builds a transformation from hyper-parameter values (what optax.inject_hyperparams wraps).
using HyperparamFactory =
    std::function<GradientTransformation(const std::map<std::string, double>& hyperparams)>;

/// optax.inject_hyperparams: the hyper-parameters live in the state, so they can be read
/// (logged) or changed between steps; schedules are evaluated at their own count. State
/// {"count", "hyperparams": {name: scalar}, "hyperparams_states": {schedule name: {"count"}},
/// "inner_state"}. Hyper-parameters are stored in `hyperparam_dtype` (default: the params' widest
/// float dtype) and handed to the factory with that precision. Unlike optax, which injects every
/// numeric argument of the factory (defaults included), only the names listed are injected.
///   auto tx = optim::inject_hyperparams(
///       [](const auto& h) { return optim::adam(h.at("learning_rate")); },
///       {{"learning_rate", optim::cosine_decay_schedule(1e-3, 1000)}});
///   // state.at("hyperparams").at("learning_rate") is the rate used by the last update
GradientTransformation inject_hyperparams(HyperparamFactory inner_factory,
                                          std::map<std::string, ScalarOrSchedule> hyperparams,
                                          std::optional<DType> hyperparam_dtype = std::nullopt);

}  // namespace loom::optim
