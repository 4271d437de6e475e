// The optimizers of optax/_src/alias.py as chains of transformations.
#include "loom/optim/alias.hpp"

namespace loom::optim {

GradientTransformation sgd(ScalarOrSchedule learning_rate, std::optional<double> momentum,
                           bool nesterov) {
  return chain({momentum ? trace(*momentum, nesterov) : identity(),
                scale_by_learning_rate(std::move(learning_rate))});
}

GradientTransformation adam(ScalarOrSchedule learning_rate, AdamOptions options) {
  return chain({scale_by_adam(options), scale_by_learning_rate(std::move(learning_rate))});
}

GradientTransformation adamw(ScalarOrSchedule learning_rate, AdamWOptions o) {
  return chain(
      {scale_by_adam(
           {.b1 = o.b1, .b2 = o.b2, .eps = o.eps, .eps_root = o.eps_root, .nesterov = o.nesterov}),
       add_decayed_weights(o.weight_decay, o.mask),
       scale_by_learning_rate(std::move(learning_rate))});
}

GradientTransformation rmsprop(ScalarOrSchedule learning_rate, RmspropOptions o) {
  return chain({scale_by_rms({.decay = o.decay,
                              .eps = o.eps,
                              .initial_scale = o.initial_scale,
                              .eps_in_sqrt = o.eps_in_sqrt,
                              .bias_correction = o.bias_correction}),
                scale_by_learning_rate(std::move(learning_rate)),
                o.momentum ? trace(*o.momentum, o.nesterov) : identity()});
}

GradientTransformation adagrad(ScalarOrSchedule learning_rate, double initial_accumulator_value,
                               double eps) {
  return chain({scale_by_rss(initial_accumulator_value, eps),
                scale_by_learning_rate(std::move(learning_rate))});
}

GradientTransformation lamb(ScalarOrSchedule learning_rate, LambOptions o) {
  return chain({scale_by_adam({.b1 = o.b1, .b2 = o.b2, .eps = o.eps, .eps_root = o.eps_root}),
                add_decayed_weights(o.weight_decay, o.mask), scale_by_trust_ratio(),
                scale_by_learning_rate(std::move(learning_rate))});
}

GradientTransformation lion(ScalarOrSchedule learning_rate, LionOptions o) {
  return chain({scale_by_lion(o.b1, o.b2), add_decayed_weights(o.weight_decay, o.mask),
                scale_by_learning_rate(std::move(learning_rate))});
}

}  // namespace loom::optim
