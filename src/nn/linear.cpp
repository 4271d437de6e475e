// nn::Dense, as flax/linen/linear.py.
#include "loom/nn/linear.hpp"

#include "loom/numpy/elementwise.hpp"
#include "loom/numpy/linalg.hpp"

namespace loom::nn {

Array Dense::call(const Array& inputs) const {
  if (features <= 0) {
    throw Error("Dense: features must be positive, got " + std::to_string(features) +
                detail::module_path_suffix());
  }
  if (!inputs.valid() || inputs.ndim() == 0) {
    throw Error("Dense: inputs need at least one axis, got " +
                (inputs.valid() ? "shape " + inputs.shape().str() : std::string("an empty array")) +
                detail::module_path_suffix());
  }
  Array kernel = param("kernel", kernel_init, Shape{inputs.shape().back(), features}, param_dtype);
  Array bias;
  if (use_bias) bias = param("bias", bias_init, Shape{features}, param_dtype);
  // Flax's promote_dtype: everything in `dtype`, else in the promotion of the three.
  DType dt = dtype.value_or(promote_types(inputs.dtype(), param_dtype));
  Array x = inputs.dtype() == dt ? inputs : inputs.astype(dt);
  if (kernel.dtype() != dt) kernel = kernel.astype(dt);
  Array y = numpy::matmul(x, kernel);
  if (use_bias) y = y + (bias.dtype() == dt ? bias : bias.astype(dt));
  return y;
}

}  // namespace loom::nn
