// nn::Dropout, as flax/linen/stochastic.py.
#include "loom/nn/stochastic.hpp"

#include "loom/numpy/creation.hpp"  // zeros_like
#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::nn {

Array Dropout::call(const Array& inputs, std::optional<bool> deterministic_arg,
                    std::optional<random::Key> rng) const {
  // merge_param first, as Flax: even rate == 0 needs `deterministic` from exactly one place.
  const bool det = merge_param("deterministic", deterministic, deterministic_arg);
  if (rate == 0.0 || det) return inputs;
  if (!(rate > 0.0 && rate <= 1.0)) {
    throw Error("Dropout: rate must be in [0, 1], got " + std::to_string(rate) +
                detail::module_path_suffix());
  }
  if (rate == 1.0) return numpy::zeros_like(inputs);  // Flax: avoids NaN gradients
  const double keep_prob = 1.0 - rate;
  const random::Key key = rng.has_value() ? *rng : make_rng(rng_collection);
  Shape mask_shape = inputs.shape();
  for (int d : broadcast_dims) {
    const int axis = d < 0 ? d + inputs.ndim() : d;
    if (axis < 0 || axis >= inputs.ndim()) {
      throw Error("Dropout: broadcast_dims entry " + std::to_string(d) +
                  " is out of range for inputs of shape " + inputs.shape().str() +
                  detail::module_path_suffix());
    }
    mask_shape[axis] = 1;
  }
  Array mask = random::bernoulli(key, keep_prob, mask_shape);
  if (mask_shape != inputs.shape()) mask = numpy::broadcast_to(mask, inputs.shape());
  // A weakly typed 0 keeps the inputs' dtype and broadcasts: no full-size zeros array.
  return numpy::where(mask, inputs / keep_prob, 0.0);
}

}  // namespace loom::nn
