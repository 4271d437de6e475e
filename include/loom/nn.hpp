// loom::nn: Flax Linen's modules and layers.
//
//   #include <loom/nn.hpp>
//   namespace nn = loom::nn;
//   struct MLP : nn::Module<MLP> {
//     loom::Array call(const loom::Array& x) const {
//       return nn::Dense{.features = 10}(jnp::tanh(nn::Dense{.features = 128}(x)));
//     }
//   };
#pragma once

#include "loom/core.hpp"
#include "loom/nn/activation.hpp"
#include "loom/nn/attention.hpp"
#include "loom/nn/conv.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/nn/linear.hpp"
#include "loom/nn/module.hpp"
#include "loom/nn/normalization.hpp"
#include "loom/nn/pooling.hpp"
#include "loom/nn/recurrent.hpp"
#include "loom/nn/sequential.hpp"
#include "loom/nn/stochastic.hpp"
#include "loom/nn/summary.hpp"
#include "loom/nn/transforms.hpp"
#include "loom/nn/transforms_call.hpp"
