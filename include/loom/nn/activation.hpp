// jax.nn's activation functions, re-exported by flax.linen (flax/linen/activation.py), and the
// PReLU module.
//
//   namespace nn = loom::nn;
//   auto h = nn::gelu(nn::Dense{.features = 128}(x));        // tanh approximation, as JAX
//   auto p = nn::softmax(logits);                             // over the last axis
//   auto y = nn::PReLU{}(h);                                  // param "negative_slope", shape ()
//
// Each function is one fused kernel (one pass, vectorized; float32 uses loom's fast exp/log/tanh)
// with its VJP next to it. Integer and bool inputs follow JAX: relu and hard_tanh keep the integer
// dtype; every other function (relu6 too: JAX clips at the float 6.) computes in float32. Gradients
// at the kinks follow JAX's definitions (relu'(0) = 0, leaky_relu'(0) = 1, hard_tanh'(+-1) = 1,
// relu6'(0) = relu6'(6) = 0).
#pragma once

#include <cstdint>
#include <optional>

#include "loom/array.hpp"
#include "loom/nn/module.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::nn {

/// max(x, 0); gradient 0 at 0 (as jax.nn.relu).     nn::relu(x)
Array relu(const Array& x);
/// min(max(x, 0), 6); gradient 0 at 0 and 6.         nn::relu6(x)
Array relu6(const Array& x);
/// 1 / (1 + exp(-x)), stable for large |x|.          nn::sigmoid(x)
Array sigmoid(const Array& x);
/// log(sigmoid(x)) = -softplus(-x), stable.          nn::log_sigmoid(x)
Array log_sigmoid(const Array& x);
/// log(1 + exp(x)), stable (jnp.logaddexp(x, 0)).    nn::softplus(x)
Array softplus(const Array& x);
/// x * sigmoid(x).                                   nn::silu(x)
Array silu(const Array& x);
/// The same function as silu (jax.nn.swish).         nn::swish(x)
Array swish(const Array& x);
/// Hyperbolic tangent (jnp.tanh).                    nn::tanh(x)
Array tanh(const Array& x);
/// Gaussian error linear unit. approximate=true (JAX's default):
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); false: x (1 + erf(x / sqrt 2)) / 2.
///   nn::gelu(x, /*approximate=*/false)
Array gelu(const Array& x, bool approximate = true);
/// x for x > 0, alpha (exp(x) - 1) otherwise.         nn::elu(x, 1.0)
Array elu(const Array& x, double alpha = 1.0);
/// max(x, 0) + alpha (exp(min(x, 0) / alpha) - 1).   nn::celu(x, 1.0)
Array celu(const Array& x, double alpha = 1.0);
/// scale * elu(x, alpha) with JAX's constants alpha = 1.6732632423543772848170429916717,
/// scale = 1.0507009873554804934193349852946.        nn::selu(x)
Array selu(const Array& x);
/// x for x >= 0, negative_slope * x otherwise.       nn::leaky_relu(x, 0.2)
Array leaky_relu(const Array& x, double negative_slope = 0.01);
/// relu6(x + 3) / 6.                                  nn::hard_sigmoid(x)
Array hard_sigmoid(const Array& x);
/// x * hard_sigmoid(x) (jax.nn.hard_silu, alias hard_swish).  nn::hard_silu(x)
Array hard_silu(const Array& x);
/// The same function as hard_silu.                   nn::hard_swish(x)
Array hard_swish(const Array& x);
/// -1 below -1, 1 above 1, x in between.             nn::hard_tanh(x)
Array hard_tanh(const Array& x);
/// Gated linear unit: split x in two halves a, b along `axis` (its size must be even) and
/// return a * sigmoid(b).                             nn::glu(x, -1)
Array glu(const Array& x, int axis = -1);

/// exp(x - max) / sum(exp(x - max)) over `axis` (an int, a list, or {} for every axis).
///   nn::softmax(logits)            // axis=-1
///   nn::softmax(scores, {-2, -1})
Array softmax(const Array& x, numpy::Axes axis = -1);
/// x - logsumexp(x) over `axis`, computed stably.    nn::log_softmax(logits)
Array log_softmax(const Array& x, numpy::Axes axis = -1);
/// jax.nn.logsumexp (forwards to jnp::logsumexp; axis {} reduces every axis, as axis=None).
///   nn::logsumexp(x, -1, /*keepdims=*/true)
Array logsumexp(const Array& x, numpy::Axes axis = {}, bool keepdims = false);
/// (x - mean) / sqrt(variance + epsilon) over `axis`, with mean = mean(x) and variance =
/// mean(x^2) - mean(x)^2, as jax.nn.standardize.   nn::standardize(x, -1, 1e-5)
Array standardize(const Array& x, numpy::Axes axis = -1, double epsilon = 1e-5);

/// jax.nn.one_hot: x[..., None] == arange(num_classes) as `dtype`, the class axis placed at
/// `axis` (-1: last). Values outside [0, num_classes) and non-integral values give all zeros.
/// Not differentiable.                                nn::one_hot(labels, 10)
Array one_hot(const Array& x, std::int64_t num_classes, DType dtype = DType::float32,
              int axis = -1);

/// flax.linen.PReLU: where(x >= 0, x, negative_slope * x) with a learned scalar
/// `negative_slope` (param shape (), dtype param_dtype, initialized to negative_slope_init).
/// As Flax, the slope is cast to the input's dtype.
///   nn::PReLU layer{.negative_slope_init = 0.1};
///   auto variables = layer.init(loom::random::key(0), x);   // params/negative_slope: 0.1
struct PReLU : Module<PReLU> {
  DType param_dtype = DType::float32;
  double negative_slope_init = 0.01;
  bool operator==(const PReLU&) const = default;

  Array call(const Array& inputs) const;
};

}  // namespace loom::nn

LOOM_NN_HASH_FIELDS(loom::nn::PReLU, m.param_dtype, m.negative_slope_init)
