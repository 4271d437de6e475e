// The CNN of Flax's MNIST example (examples/mnist/train.py, class CNN, Linen version), line for
// line: the same variables tree (Conv_0, Conv_1, Dense_0, Dense_1), shapes and parameters.
//
//   #include "models/cnn.hpp"
//   loom::models::CNN model;
//   loom::Tree variables = model.init(loom::random::key(0), jnp::ones({1, 28, 28, 1}));
//   loom::Array logits = model.apply(variables, images);   // (batch, 28, 28, 1) -> (batch, 10)
//
// Parameters: 824,458 (Conv_0 3*3*1*32 + 32, Conv_1 3*3*32*64 + 64, Dense_0 7*7*64*256 + 256,
// Dense_1 256*10 + 10).
#pragma once

#include <loom/loom.hpp>
#include <loom/nn.hpp>

namespace loom::models {

struct CNN : nn::Module<CNN> {
  /// x: (batch, 28, 28, 1) images -> (batch, 10) logits.
  Array call(const Array& x) const {
    Array h = nn::Conv{.features = 32, .kernel_size = {3, 3}}(x);
    h = nn::relu(h);
    h = nn::avg_pool(h, {2, 2}, {2, 2});
    h = nn::Conv{.features = 64, .kernel_size = {3, 3}}(h);
    h = nn::relu(h);
    h = nn::avg_pool(h, {2, 2}, {2, 2});
    h = numpy::reshape(h, {h.shape()[0], -1});  // flatten
    h = nn::Dense{.features = 256}(h);
    h = nn::relu(h);
    return nn::Dense{.features = 10}(h);
  }
};

}  // namespace loom::models
