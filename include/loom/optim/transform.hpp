// Gradient transformations, after optax/_src/transform.py and optax/transforms/: the building
// blocks the optimizers of loom/optim/alias.hpp chain. States are laid out as Flax serializes
// optax's NamedTuples (field names as keys, EmptyState as {}).
//
//   auto tx = optim::chain({optim::clip_by_global_norm(1.0), optim::scale_by_adam(),
//                           optim::scale_by_learning_rate(1e-3)});
#pragma once

#include "loom/optim/base.hpp"
#include "loom/optim/masking.hpp"

namespace loom::optim {

/// optax.trace: t <- g + decay * t; the update is t (or g + decay * t with nesterov).
/// State {"trace": zeros like params}.
///   auto momentum = optim::trace(0.9);
GradientTransformation trace(double decay, bool nesterov = false);

/// optax.scale: updates * step_size. State {}.
GradientTransformation scale(double step_size);

/// optax.scale_by_schedule: updates * step_size_fn(count). State {"count": int32 0}. The
/// schedule's Array form is evaluated on the count (traced under jit); a host-only schedule
/// works eagerly and is a loom::Error under jit/vmap (see optim::Schedule).
GradientTransformation scale_by_schedule(Schedule step_size_fn);

/// optax.scale_by_learning_rate: scale(-lr) for a constant (state {}), scale_by_schedule(-lr(t))
/// for a schedule (state {"count"}); flip_sign=false keeps the sign.
///   auto tx = optim::scale_by_learning_rate(optim::exponential_decay(0.1, 100, 0.5));
GradientTransformation scale_by_learning_rate(ScalarOrSchedule learning_rate,
                                              bool flip_sign = true);

/// Options of optax.scale_by_adam (defaults as optax).
struct AdamOptions {
  double b1 = 0.9;
  double b2 = 0.999;
  double eps = 1e-8;
  double eps_root = 0.0;
  bool nesterov = false;
};
/// optax.scale_by_adam: bias-corrected mu / (sqrt(nu + eps_root) + eps).
/// State {"count": int32, "mu": zeros like params, "nu": zeros like params}.
///   auto tx = optim::scale_by_adam({.b1 = 0.8});
GradientTransformation scale_by_adam(AdamOptions options = {});

/// Options of optax.scale_by_rms.
struct RmsOptions {
  double decay = 0.9;
  double eps = 1e-8;
  double initial_scale = 0.0;
  bool eps_in_sqrt = true;
  bool bias_correction = false;
};
/// optax.scale_by_rms: g / sqrt(nu + eps) (or g / (sqrt(nu) + eps)).
/// State {"nu"} ({"count", "nu"} with bias_correction).
GradientTransformation scale_by_rms(RmsOptions options = {});

/// optax.scale_by_rss (Adagrad's rule): g * rsqrt(sum_of_squares + eps) where the sum is > 0.
/// State {"sum_of_squares": initial_accumulator_value like params}.
GradientTransformation scale_by_rss(double initial_accumulator_value = 0.1, double eps = 1e-7);

/// optax.scale_by_lion: sign((1 - b1) g + b1 mu); mu <- (1 - b2) g + b2 mu.
/// State {"count", "mu"}.
GradientTransformation scale_by_lion(double b1 = 0.9, double b2 = 0.99);

/// optax.scale_by_trust_ratio (LAMB, LARS): u * trust_coefficient * |p| / (|u| + eps) per leaf,
/// norms clipped below at min_norm; 1 where either norm is 0. Needs params. State {}.
GradientTransformation scale_by_trust_ratio(double min_norm = 0.0, double trust_coefficient = 1.0,
                                            double eps = 0.0);

/// optax.clip_by_global_norm: updates * max_norm / global_norm when global_norm >= max_norm
/// (a select on the norm, no host branch: it jits). State {}.
GradientTransformation clip_by_global_norm(double max_norm);

}  // namespace loom::optim
