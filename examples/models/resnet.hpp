// ResNet V1.5 of Flax's ImageNet example (examples/imagenet/models.py), line for line: the same
// variables tree (conv_init, bn_init, ResNetBlock_<k>/{Conv_0, BatchNorm_0, Conv_1, BatchNorm_1,
// conv_proj, norm_proj}, Dense_0), shapes, parameters and batch_stats.
//
//   #include "models/resnet.hpp"
//   auto model = loom::models::ResNet18(/*num_classes=*/1000);
//   loom::Tree v = model.init(loom::random::key(0), jnp::ones({1, 224, 224, 3}), /*train=*/false);
//   auto [logits, updates] = model.apply_mutable(v, {.mutable_collections = {"batch_stats"}},
//                                                images, /*train=*/true);
//   loom::Array eval_logits = model.apply(v, images, /*train=*/false);
//
// Flax's `conv` and `norm` ModuleDefs (partial(nn.Conv, use_bias=False, dtype=...),
// partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=...))
// are module values here: a block copies the template and sets the remaining fields, as the
// partial is called with them. One difference: Flax's norm has axis_name='batch' for pmap'd
// cross-device statistics; loom runs on one device, so the statistics are the local batch's
// (what Flax computes without pmap).
#pragma once

#include <cstdint>
#include <functional>
#include <loom/loom.hpp>
#include <loom/nn.hpp>
#include <vector>

namespace loom::models {

using Activation = std::function<Array(const Array&)>;

namespace detail {
/// conv(features, kernel_size, strides) on a copy of the template (Flax's partial called).
inline nn::Conv conv_of(nn::Conv conv, std::int64_t features, std::vector<std::int64_t> kernel,
                        std::vector<std::int64_t> strides = {1, 1}) {
  conv.features = features;
  conv.kernel_size = std::move(kernel);
  conv.strides = std::move(strides);
  return conv;
}
}  // namespace detail

/// ResNet block: 3x3 conv (strided), norm, act, 3x3 conv, norm (scale_init zeros), plus a 1x1
/// projection shortcut (conv_proj, norm_proj) when the shapes differ.
struct ResNetBlock : nn::Module<ResNetBlock> {
  std::int64_t filters = 0;
  nn::Conv conv;       // the conv template
  nn::BatchNorm norm;  // the norm template
  Activation act = nn::relu;
  std::vector<std::int64_t> strides = {1, 1};

  Array call(const Array& x) const {
    Array residual = x;
    Array y = detail::conv_of(conv, filters, {3, 3}, strides)(x);
    y = norm(y);
    y = act(y);
    y = detail::conv_of(conv, filters, {3, 3})(y);
    nn::BatchNorm last = norm;
    last.scale_init = nn::initializers::zeros_init();
    y = last(y);
    if (residual.shape() != y.shape()) {
      residual = child("conv_proj", detail::conv_of(conv, filters, {1, 1}, strides))(residual);
      residual = child("norm_proj", norm)(residual);
    }
    return act(residual + y);
  }
};

/// Bottleneck block: 1x1, 3x3 (strided), 1x1 to 4 * filters, with the same shortcut rule.
struct BottleneckResNetBlock : nn::Module<BottleneckResNetBlock> {
  std::int64_t filters = 0;
  nn::Conv conv;
  nn::BatchNorm norm;
  Activation act = nn::relu;
  std::vector<std::int64_t> strides = {1, 1};

  Array call(const Array& x) const {
    Array residual = x;
    Array y = detail::conv_of(conv, filters, {1, 1})(x);
    y = act(norm(y));
    y = detail::conv_of(conv, filters, {3, 3}, strides)(y);
    y = act(norm(y));
    y = detail::conv_of(conv, filters * 4, {1, 1})(y);
    nn::BatchNorm last = norm;
    last.scale_init = nn::initializers::zeros_init();
    y = last(y);
    if (residual.shape() != y.shape()) {
      residual = child("conv_proj", detail::conv_of(conv, filters * 4, {1, 1}, strides))(residual);
      residual = child("norm_proj", norm)(residual);
    }
    return act(residual + y);
  }
};

/// ResNetV1.5 (Flax's ResNet): a 7x7/2 stem (conv_init, bn_init, relu, 3x3/2 SAME max pool),
/// stages of Block with num_filters * 2^i filters (stride 2 at the first block of every stage
/// but the first), a spatial mean and a Dense head.
template <typename Block>
struct ResNet : nn::Module<ResNet<Block>> {
  std::vector<int> stage_sizes;
  std::int64_t num_classes = 0;
  std::int64_t num_filters = 64;
  DType dtype = DType::float32;
  Activation act = nn::relu;
  nn::Conv conv = {};  // Flax's `conv: ModuleDef = nn.Conv`

  /// x: (batch, H, W, 3) -> (batch, num_classes) logits. train: batch statistics (which
  /// apply_mutable with {"batch_stats"} updates) instead of the running averages.
  Array call(const Array& x, bool train = true) const {
    nn::Conv conv_t = conv;  // partial(self.conv, use_bias=False, dtype=self.dtype)
    conv_t.use_bias = false;
    conv_t.dtype = dtype;
    const nn::BatchNorm norm{
        .use_running_average = !train, .momentum = 0.9, .epsilon = 1e-5, .dtype = dtype};
    nn::Conv stem = detail::conv_of(conv_t, num_filters, {7, 7}, {2, 2});
    stem.padding = {{3, 3}, {3, 3}};
    Array h = this->child("conv_init", stem)(x);
    h = this->child("bn_init", norm)(h);
    h = nn::relu(h);
    h = nn::max_pool(h, {3, 3}, {2, 2}, "SAME");
    for (std::size_t i = 0; i < stage_sizes.size(); ++i) {
      for (int j = 0; j < stage_sizes[i]; ++j) {
        const std::int64_t s = (i > 0 && j == 0) ? 2 : 1;
        h = Block{.filters = num_filters << i,
                  .conv = conv_t,
                  .norm = norm,
                  .act = act,
                  .strides = {s, s}}(h);
      }
    }
    h = numpy::mean(h, {1, 2});
    h = nn::Dense{.features = num_classes, .dtype = dtype}(h);
    return h.astype(dtype);
  }
};

/// ResNet18 = partial(ResNet, stage_sizes=[2, 2, 2, 2], block_cls=ResNetBlock).
inline ResNet<ResNetBlock> ResNet18(std::int64_t num_classes, DType dtype = DType::float32) {
  return {.stage_sizes = {2, 2, 2, 2}, .num_classes = num_classes, .dtype = dtype};
}
/// ResNet34 = partial(ResNet, stage_sizes=[3, 4, 6, 3], block_cls=ResNetBlock).
inline ResNet<ResNetBlock> ResNet34(std::int64_t num_classes, DType dtype = DType::float32) {
  return {.stage_sizes = {3, 4, 6, 3}, .num_classes = num_classes, .dtype = dtype};
}
/// ResNet50 = partial(ResNet, stage_sizes=[3, 4, 6, 3], block_cls=BottleneckResNetBlock).
inline ResNet<BottleneckResNetBlock> ResNet50(std::int64_t num_classes,
                                              DType dtype = DType::float32) {
  return {.stage_sizes = {3, 4, 6, 3}, .num_classes = num_classes, .dtype = dtype};
}

}  // namespace loom::models
