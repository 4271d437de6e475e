// The parity models of examples/models: Flax's MNIST CNN and ImageNet ResNet.
//
// Expected trees come from Flax's sources (examples/mnist/train.py, Linen CNN at flax commit
// 7e9bb761; examples/imagenet/models.py): module names by Flax's naming rules (<Class>_<k> per
// parent, explicit names as given), shapes from the layer definitions. Parameter counts are
// derived by hand below; ResNet18's 11,689,512 also equals torchvision's published resnet18
// count (same convs, BatchNorm scale/bias and 512x1000 head; V1.5's stride placement does not
// change any shape).
#include <gtest/gtest.h>

#include <string>

#include "../examples/models/cnn.hpp"
#include "../examples/models/resnet.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace jnp = loom::numpy;
namespace rnd = loom::random;
namespace models = loom::models;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;

namespace {

std::int64_t count(const Tree& t) {
  std::int64_t n = 0;
  for (const Array& a : loom::tree_leaves(t)) n += a.size();
  return n;
}

Shape shape_at(const Tree& t, const std::vector<std::string>& path) {
  return t.at_path(path).leaf().shape();
}

TEST(Models, MnistCnnTreeAndParameterCount) {
  models::CNN model;
  Tree v = model.init(rnd::key(0), jnp::ones({1, 28, 28, 1}));
  EXPECT_EQ(v.str(),
            "params/Conv_0/bias: float32[32]\n"
            "params/Conv_0/kernel: float32[3,3,1,32]\n"
            "params/Conv_1/bias: float32[64]\n"
            "params/Conv_1/kernel: float32[3,3,32,64]\n"
            "params/Dense_0/bias: float32[256]\n"
            "params/Dense_0/kernel: float32[3136,256]\n"
            "params/Dense_1/bias: float32[10]\n"
            "params/Dense_1/kernel: float32[256,10]\n");
  // (3*3*1*32 + 32) + (3*3*32*64 + 64) + (7*7*64*256 + 256) + (256*10 + 10)
  //   = 320 + 18,496 + 803,072 + 2,570 = 824,458
  EXPECT_EQ(count(v.at("params")), 824458);
  Array logits = model.apply(v, rnd::normal(rnd::key(1), {3, 28, 28, 1}));
  EXPECT_EQ(logits.shape(), (Shape{3, 10}));
  EXPECT_EQ(logits.dtype(), DType::float32);
}

TEST(Models, ResNet18TreeAndParameterCount) {
  auto model = models::ResNet18(1000);
  // Shapes do not depend on the image size; 32x32 keeps the forward pass cheap.
  const Array x = jnp::ones({1, 32, 32, 3});
  Tree v = model.init_shapes(rnd::key(0), x, /*train=*/false);
  const Tree& p = v.at("params");
  const Tree& bs = v.at("batch_stats");
  EXPECT_EQ(v.size(), 2u);
  EXPECT_EQ(shape_at(p, {"conv_init", "kernel"}), (Shape{7, 7, 3, 64}));
  EXPECT_FALSE(p.at("conv_init").contains("bias"));  // use_bias=False
  EXPECT_EQ(shape_at(p, {"bn_init", "scale"}), (Shape{64}));
  EXPECT_EQ(shape_at(bs, {"bn_init", "mean"}), (Shape{64}));
  EXPECT_EQ(shape_at(bs, {"bn_init", "var"}), (Shape{64}));
  // Eight ResNetBlock_k; the first of stages 2-4 (k = 2, 4, 6) project the shortcut.
  for (int k = 0; k < 8; ++k) {
    SCOPED_TRACE(k);
    const std::int64_t f = 64 << (k / 2), fin = k == 0 ? 64 : 64 << ((k - 1) / 2);
    const Tree& b = p.at("ResNetBlock_" + std::to_string(k));
    const bool proj = k == 2 || k == 4 || k == 6;
    EXPECT_EQ(b.size(), proj ? 6u : 4u);
    EXPECT_EQ(shape_at(b, {"Conv_0", "kernel"}), (Shape{3, 3, fin, f}));
    EXPECT_EQ(shape_at(b, {"Conv_1", "kernel"}), (Shape{3, 3, f, f}));
    EXPECT_EQ(shape_at(b, {"BatchNorm_0", "scale"}), (Shape{f}));
    EXPECT_EQ(shape_at(b, {"BatchNorm_1", "bias"}), (Shape{f}));
    if (proj) {
      EXPECT_EQ(shape_at(b, {"conv_proj", "kernel"}), (Shape{1, 1, fin, f}));
      EXPECT_EQ(shape_at(b, {"norm_proj", "scale"}), (Shape{f}));
    }
  }
  EXPECT_EQ(shape_at(p, {"Dense_0", "kernel"}), (Shape{512, 1000}));
  EXPECT_EQ(shape_at(p, {"Dense_0", "bias"}), (Shape{1000}));
  EXPECT_EQ(p.size(), 11u);  // conv_init, bn_init, 8 blocks, Dense_0
  EXPECT_EQ(loom::tree_leaves(p).size(), 62u);
  // params by hand: stem 7*7*3*64 + 2*64 = 9,536; stage 1: 2 * (2*3*3*64*64 + 4*64) = 147,968;
  // stage 2: (3*3*64*128 + 3*3*128*128 + 4*128 + 64*128 + 2*128) + (2*3*3*128*128 + 4*128)
  //   = 230,144 + 295,424; stage 3: 919,040 + 1,180,672; stage 4: 3,673,088 + 4,720,640;
  // head 512*1000 + 1000 = 513,000. Total 11,689,512.
  EXPECT_EQ(count(p), 11689512);
  // batch_stats: mean and var for each of the 20 BatchNorms' channels (64 + 4*64 + 5*128 +
  // 5*256 + 5*512 = 4,800): 9,600.
  EXPECT_EQ(count(bs), 9600);
  Array logits = model.apply(v, x, /*train=*/false);
  EXPECT_EQ(logits.shape(), (Shape{1, 1000}));
}

// Flax's _ResNet1 (stage_sizes [1]) with few filters: a real init, a training step's forward
// pass that updates batch_stats, and an eval pass.
TEST(Models, SmallResNetTrainAndEval) {
  models::ResNet<models::ResNetBlock> model{
      .stage_sizes = {1, 1}, .num_classes = 5, .num_filters = 8};
  const Array x = rnd::normal(rnd::key(3), {2, 16, 16, 3});
  Tree v = model.init(rnd::key(0), x, /*train=*/false);
  EXPECT_EQ(shape_at(v.at("params"), {"ResNetBlock_1", "conv_proj", "kernel"}),
            (Shape{1, 1, 8, 16}));
  // BatchNorm_1's scale starts at zero (scale_init=zeros_init() in the block).
  EXPECT_EQ(
      jnp::sum(jnp::abs(v.at_path({"params", "ResNetBlock_0", "BatchNorm_1", "scale"}).leaf()))
          .item<double>(),
      0.0);
  auto [y, updates] =
      model.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, x, /*train=*/true);
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  const Array m0 = v.at_path({"batch_stats", "bn_init", "mean"}).leaf();
  const Array m1 = updates.at_path({"batch_stats", "bn_init", "mean"}).leaf();
  EXPECT_GT(jnp::sum(jnp::abs(m1 - m0)).item<double>(), 0.0);
  EXPECT_EQ(model.apply(v, x, /*train=*/false).shape(), (Shape{2, 5}));
}

TEST(Models, ResNet50Tree) {
  auto model = models::ResNet50(10);
  Tree v = model.init_shapes(rnd::key(0), jnp::ones({1, 32, 32, 3}), /*train=*/false);
  const Tree& p = v.at("params");
  EXPECT_EQ(shape_at(p, {"BottleneckResNetBlock_0", "Conv_2", "kernel"}), (Shape{1, 1, 64, 256}));
  EXPECT_EQ(shape_at(p, {"BottleneckResNetBlock_0", "conv_proj", "kernel"}),
            (Shape{1, 1, 64, 256}));
  EXPECT_EQ(shape_at(p, {"Dense_0", "kernel"}), (Shape{2048, 10}));
  // torchvision's resnet50 has 25,557,032 params with a 2048x1000 head; with 10 classes:
  // 25,557,032 - 2048*990 - 990 = 23,528,522.
  EXPECT_EQ(count(p), 23528522);
}

}  // namespace
